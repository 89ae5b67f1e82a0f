package blindledger.authz_test

# `with ... as` takes local variables here: regorus 0.14.1 evaluates a `with` value that
# refers to a rule or calls a function as undefined.

import data.blindledger.authz

method(name) := concat("", [authz.service_prefix, name])

# A teller of tenant acme transferring from alice's account, served in the tenant's region.
teller := {
	"principal": "alice",
	"roles": ["teller"],
	"tenant_claims": ["acme"],
	"method": method("Transfer"),
	"resource": {"tenant": "acme", "account": "alice", "region": "eu-west"},
	"context": {"service_region": "eu-west", "time": "2026-11-21T10:00:00Z"},
}

as_role(role, rpc) := object.union(teller, {"roles": [role], "method": method(rpc)})

allowed(request) if authz.decision.allow with input as request

risk := {
	"tiers": {"acme/alice": "medium", "acme/bob": "high", "acme/mallory": "blocked", "acme/eve": "critical"},
	"limits": {"medium": {"max_amount": 100000, "window_limit": 500000, "window_seconds": 86400}},
}

test_teller_may_transfer_in_own_tenant if {
	request := teller
	d := authz.decision with input as request
	d.allow
	d.reasons == []
	d.obligations == {}
}

test_teller_may_read if {
	every rpc in authz.read_rpcs {
		allowed(as_role("teller", rpc))
	}
}

test_teller_may_not_deposit_or_admin if {
	not allowed(as_role("teller", "Deposit"))
	not allowed(as_role("teller", "OpenAccount"))
	request := as_role("teller", "Deposit")
	d := authz.decision with input as request
	d.reasons == [sprintf("roles [\"teller\"] may not call %s", [method("Deposit")])]
}

test_teller_limited_to_claimed_tenants if {
	request := object.union(teller, {"resource": {"tenant": "globex", "account": "alice"}})
	d := authz.decision with input as request
	not d.allow
	d.reasons == ["tenant globex is not among the token's tenants [\"acme\"]"]
}

test_request_without_tenant_denied if {
	request := object.remove(teller, ["resource"])
	d := authz.decision with input as request
	not d.allow
	d.reasons == ["tenant (none) is not among the token's tenants [\"acme\"]"]
}

test_treasury_may_move_money_in_and_out_and_read if {
	allowed(as_role("treasury", "Deposit"))
	allowed(as_role("treasury", "Withdraw"))
	every rpc in authz.read_rpcs {
		allowed(as_role("treasury", rpc))
	}
	not allowed(as_role("treasury", "Transfer"))
	not allowed(as_role("treasury", "RegisterTenantKeys"))
}

test_auditor_reads_metadata_only if {
	every rpc in {"GetTenant", "GetJob", "WatchJob", "ListTransfers"} {
		allowed(as_role("auditor", rpc))
	}
	not allowed(as_role("auditor", "GetBalance"))
	not allowed(as_role("auditor", "Aggregate"))
	not allowed(as_role("auditor", "Transfer"))
}

test_admin_may_do_everything_in_any_tenant if {
	admin := object.union(teller, {"roles": ["admin"], "tenant_claims": []})
	every rpc in {"RegisterTenantKeys", "OpenAccount", "Deposit", "Withdraw", "Transfer", "Aggregate"} {
		allowed(object.union(admin, {"method": method(rpc)}))
	}
}

test_unknown_role_and_missing_roles_denied if {
	not allowed(as_role("intern", "GetBalance"))
	request := object.remove(teller, ["roles"])
	d := authz.decision with input as request
	not d.allow
	d.reasons == [sprintf("roles [] may not call %s", [method("Transfer")])]
}

test_other_services_denied_to_non_admins if {
	not allowed(object.union(teller, {"method": "/grpc.health.v1.Health/Check"}))
}

test_empty_input_is_a_defined_denial if {
	d := authz.decision with input as {}
	d.allow == false
	count(d.reasons) == 2
	d.obligations == {}
}

test_data_residency if {
	request := object.union(teller, {"context": {"service_region": "us-east"}})
	d := authz.decision with input as request
	not d.allow
	d.reasons == ["data residency: tenant region eu-west, service region us-east"]
}

test_data_residency_unknown_service_region if {
	request := object.remove(teller, ["context"])
	d := authz.decision with input as request
	not d.allow
	d.reasons == ["data residency: tenant region eu-west, service region unknown"]
}

test_tenant_without_region_served_anywhere if {
	# object.union merges nested objects, so drop the region-bearing ones first.
	request := object.union(object.remove(teller, ["resource", "context"]), {
		"resource": {"tenant": "acme", "account": "alice"},
		"context": {"service_region": "us-east"},
	})
	allowed(request)
}

test_no_risk_data_means_low_tier if {
	request := teller
	authz.tier == "low" with input as request
}

test_medium_tier_transfer_carries_obligations if {
	request := teller
	risk_data := risk
	d := authz.decision with input as request with data.risk as risk_data
	d.allow
	d.obligations == {"max_amount": 100000, "window_limit": 500000, "window_seconds": 86400}
	d.reasons == ["risk tier medium: limits apply"]
}

test_medium_tier_reads_carry_no_obligations if {
	request := as_role("teller", "GetBalance")
	risk_data := risk
	d := authz.decision with input as request with data.risk as risk_data
	d.allow
	d.obligations == {}
}

test_unknown_limit_keys_are_dropped if {
	limits := {"medium": {"max_amount": 5, "colour": "red"}}
	request := teller
	risk_data := {"tiers": risk.tiers, "limits": limits}
	d := authz.decision with input as request with data.risk as risk_data
	d.obligations == {"max_amount": 5}
}

test_high_tier_without_limits_denied if {
	request := object.union(teller, {"resource": {"tenant": "acme", "account": "bob", "region": "eu-west"}})
	risk_data := risk
	d := authz.decision with input as request with data.risk as risk_data
	not d.allow
	d.reasons == ["risk tier high has no limits configured"]
}

test_blocked_account_denied_even_to_admin if {
	request := object.union(teller, {
		"roles": ["admin"],
		"resource": {"tenant": "acme", "account": "mallory", "region": "eu-west"},
	})
	risk_data := risk
	d := authz.decision with input as request with data.risk as risk_data
	not d.allow
	d.reasons == ["account blocked by risk tier"]
}

test_unknown_tier_denied if {
	request := object.union(teller, {"resource": {"tenant": "acme", "account": "eve", "region": "eu-west"}})
	risk_data := risk
	d := authz.decision with input as request with data.risk as risk_data
	not d.allow
	d.reasons == ["unknown risk tier critical"]
}

test_frozen_account_moves_no_money_even_for_admin if {
	risk_data := {"frozen": {"acme/alice": {"since": 1795000000000}}}
	every rpc in authz.money_rpcs {
		request := as_role("admin", rpc)
		d := authz.decision with input as request with data.risk as risk_data
		not d.allow
		d.reasons == ["account frozen by a compliance officer"]
	}
}

test_frozen_account_can_still_be_read if {
	risk_data := {"frozen": {"acme/alice": {"since": 1795000000000}}}
	every rpc in authz.read_rpcs {
		request := as_role("teller", rpc)
		authz.decision.allow with input as request with data.risk as risk_data
	}
}

test_freeze_touches_only_the_frozen_account if {
	risk_data := {"frozen": {"acme/bob": {"since": 1795000000000}}}
	request := teller
	authz.decision.allow with input as request with data.risk as risk_data
}

test_transfer_into_a_frozen_account_denied if {
	risk_data := {"frozen": {"acme/bob": {"since": 1795000000000}}}
	request := object.union(teller, {"resource": {"counterparty": "bob"}})
	d := authz.decision with input as request with data.risk as risk_data
	not d.allow
	d.reasons == ["receiving account frozen by a compliance officer"]
}

test_transfer_into_a_blocked_account_denied if {
	request := object.union(teller, {"resource": {"counterparty": "mallory"}})
	d := authz.decision with input as request with data.risk as risk
	not d.allow
	d.reasons == ["receiving account blocked by risk tier"]
}

test_auditor_reads_job_metadata_but_not_results if {
	metadata := as_role("auditor", "GetJob")
	authz.decision.allow with input as metadata
	request := object.union(metadata, {"resource": {"include_results": true}})
	d := authz.decision with input as request
	not d.allow
	d.reasons == [`roles ["auditor"] may not receive encrypted results`]
}

test_teller_receives_job_results if {
	request := object.union(as_role("teller", "GetJob"), {"resource": {"include_results": true}})
	authz.decision.allow with input as request
}

test_deposit_beside_a_frozen_counterparty_field_allowed if {
	# Only transfers pay into a counterparty.
	risk_data := {"frozen": {"acme/bob": {"since": 1795000000000}}}
	request := object.union(as_role("treasury", "Deposit"), {"resource": {"counterparty": "bob"}})
	authz.decision.allow with input as request with data.risk as risk_data
}

revoked := {"revoked_keys": {"acme/k1": {"since": 1795000000000}}}

test_revoked_key_stops_ciphertext_calls_even_for_admin if {
	risk_data := revoked
	every rpc in authz.ciphertext_rpcs {
		request := object.union(as_role("admin", rpc), {"resource": {"key_id": "k1"}})
		d := authz.decision with input as request with data.risk as risk_data
		not d.allow
		d.reasons == ["tenant key revoked by a compliance officer"]
	}
}

test_revoked_key_leaves_metadata_readable if {
	risk_data := revoked
	every rpc in {"GetTenant", "GetJob", "WatchJob", "ListTransfers"} {
		request := object.union(as_role("admin", rpc), {"resource": {"key_id": "k1"}})
		authz.decision.allow with input as request with data.risk as risk_data
	}
}

test_revocation_touches_only_the_revoked_key if {
	risk_data := revoked
	request := object.union(teller, {"resource": {"key_id": "k2"}})
	authz.decision.allow with input as request with data.risk as risk_data
}

officer(role, name) := {
	"principal": "carol",
	"roles": [role],
	"tenant_claims": [],
	"method": concat("", [authz.dashboard_prefix, name]),
	"resource": {},
	"context": {"service_region": "eu-west", "time": "2026-11-21T10:00:00Z"},
}

test_auditor_reads_the_dashboard_across_tenants if {
	every name in authz.dashboard_reads {
		request := officer("auditor", name)
		d := authz.decision with input as request
		d.allow
		d.obligations == {}
	}
}

test_admin_commands_need_the_admin_role if {
	auditor := officer("auditor", "AdminCommand")
	d := authz.decision with input as auditor
	not d.allow
	count(d.reasons) == 1
	endswith(d.reasons[0], "may not call /blindledger.audit.v1.Dashboard/AdminCommand")
	admin := officer("admin", "AdminCommand")
	authz.decision.allow with input as admin
}

test_money_roles_do_not_read_the_dashboard if {
	every role in {"teller", "treasury"} {
		request := officer(role, "Decisions")
		not authz.decision.allow with input as request
	}
}

test_dashboard_names_do_not_open_ledger_calls if {
	# An auditor's dashboard permission is not a permission on the ledger.
	request := object.union(as_role("auditor", "GetBalance"), {"resource": {}})
	not authz.decision.allow with input as request
}

caller(role, name) := object.union(officer(role, name), {
	"principal": "ci-pipeline",
	"method": concat("", [authz.controller_prefix, name]),
})

test_controller_rights_by_role if {
	every name in {"Scores", "History", "Push"} {
		request := caller("ci", name)
		authz.decision.allow with input as request
	}
	every name in {"Scores", "History"} {
		request := caller("auditor", name)
		authz.decision.allow with input as request
	}
	reader := caller("bundle_reader", "Bundle")
	authz.decision.allow with input as reader
	every name in {"Bundle", "Scores", "History", "Push", "Cycle", "Rollback"} {
		request := caller("admin", name)
		authz.decision.allow with input as request
	}
}

test_controller_admin_requests_need_the_admin_role if {
	every role in {"ci", "auditor", "bundle_reader", "teller"} {
		every name in {"Cycle", "Rollback"} {
			request := caller(role, name)
			not authz.decision.allow with input as request
		}
	}
	auditor := caller("auditor", "Push")
	d := authz.decision with input as auditor
	not d.allow
	endswith(d.reasons[0], "may not call /blindledger.controller.v1.Api/Push")
}

test_bundle_readers_read_bundles_only if {
	every name in {"Scores", "History", "Push"} {
		request := caller("bundle_reader", name)
		not authz.decision.allow with input as request
	}
	# Nor anything of the ledger's.
	request := object.union(as_role("bundle_reader", "GetTenant"), {"resource": {"tenant": "acme"}})
	not authz.decision.allow with input as request
}
