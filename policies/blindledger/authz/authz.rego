# Authorization of every blindledger RPC. The service evaluates `decision` once per
# request, enforces `allow`, records `reasons`, and applies `obligations` to amounts.
#
# Input, built by the service's policy layer:
#   principal      authenticated subject, e.g. "alice"
#   roles          roles the token grants: "admin", "treasury", "teller", "auditor"
#   tenant_claims  tenants the token grants access to
#   method         full gRPC method, e.g. "/blindledger.ledger.v1.LedgerService/Transfer";
#                  the audit service names its dashboard and API requests alike,
#                  "/blindledger.audit.v1.Dashboard/Decisions", and the controller its
#                  API's, "/blindledger.controller.v1.Api/Push"
#   resource       {"tenant", "account", "region", "counterparty", "key_id",
#                  "include_results"}: what the request touches; "counterparty" is a
#                  transfer's receiving account, "key_id" the id of the tenant's registered
#                  keys, and "include_results" (true, or absent) says a GetJob asks for the
#                  job's encrypted results as well as its metadata
#   context        {"service_region", "time", "risk"}: facts about the serving side;
#                  "risk" is carried for the decision log only (and masked there)
#   peer           the client certificate's identity (URI or DNS SAN) on a service that
#                  requires client certificates (mTLS); absent otherwise. A workload
#                  granted roles by its certificate calls with principal = peer.
#
# Risk data comes from the controller's `risk` bundle, which owns the root `risk`:
#   data.risk.tiers   {"<tenant>/<account>": "low" | "medium" | "high" | "blocked"}
#   data.risk.limits  {"medium": {"max_amount": 100000, "window_limit": 500000,
#                                 "window_seconds": 86400}, "high": {...}}
#   data.risk.frozen  {"<tenant>/<account>": {"since": <unix ms>}}: accounts frozen by a
#                     compliance officer's signed command
#   data.risk.revoked_keys  {"<tenant>/<key_id>": {"since": <unix ms>}}: tenant keys an
#                     officer revoked
# Without it every account is "low" and no obligations apply.
package blindledger.authz

service_prefix := "/blindledger.ledger.v1.LedgerService/"

# The RPC name, defined only for methods of the ledger service.
rpc := trim_prefix(input.method, service_prefix) if startswith(input.method, service_prefix)

read_rpcs := {"GetBalance", "GetJob", "WatchJob", "ListTransfers", "GetTenant", "Aggregate"}

# Auditors see metadata, never balances or aggregates (even encrypted ones).
metadata_rpcs := {"GetTenant", "GetJob", "WatchJob", "ListTransfers"}

# What each non-admin role may call; admin may call everything.
role_rpcs := {
	"treasury": {"Deposit", "Withdraw"} | read_rpcs,
	"teller": {"Transfer"} | read_rpcs,
	"auditor": metadata_rpcs,
}

roles := object.get(input, "roles", [])

tenant_claims := object.get(input, "tenant_claims", [])

requested_method := object.get(input, "method", "(none)")

is_admin if "admin" in roles

method_permitted if is_admin

method_permitted if {
	some role in roles
	rpc in role_rpcs[role]
}

# Every non-admin role is limited to the tenants its token names.
tenant_permitted if is_admin

tenant_permitted if input.resource.tenant in tenant_claims

# The audit service's dashboard and API. Compliance officers (auditors) read the whole
# trail across tenants: it holds metadata only. Signed admin commands take the admin role
# (and the officer's signature, which the service checks on top).
dashboard_prefix := "/blindledger.audit.v1.Dashboard/"

dashboard_request := trim_prefix(input.method, dashboard_prefix) if startswith(input.method, dashboard_prefix)

dashboard_reads := {
	"SignIn", "Overview", "Decisions", "Transactions", "Transaction", "Attention", "Risk",
	"Bundles", "Export", "Events", "Verify", "Checkpoints", "PolicyData",
}

method_permitted if {
	"auditor" in roles
	dashboard_request in dashboard_reads
}

# The trail spans tenants: on the dashboard the role alone decides.
tenant_permitted if dashboard_request

# The controller's HTTP API. Services download bundles with a `bundle_reader` token; CI
# reads scores and history and pushes policy (which the push's tests and impact analysis
# still vet); auditors read. Running a cycle and rolling back (which skips those checks)
# take the admin role.
controller_prefix := "/blindledger.controller.v1.Api/"

controller_request := trim_prefix(input.method, controller_prefix) if startswith(input.method, controller_prefix)

controller_reads := {"Scores", "History"}

controller_rights := {
	"bundle_reader": {"Bundle"},
	"auditor": controller_reads,
	"ci": {"Push"} | controller_reads,
}

method_permitted if {
	some role in roles
	controller_request in controller_rights[role]
}

# The controller's data spans tenants: the role alone decides.
tenant_permitted if controller_request

default allow := false

allow if {
	method_permitted
	tenant_permitted
	count(deny) == 0
}

deny contains sprintf("roles %v may not call %s", [roles, requested_method]) if {
	not method_permitted
}

deny contains sprintf("tenant %s is not among the token's tenants %v", [tenant, tenant_claims]) if {
	not tenant_permitted
	tenant := object.get(object.get(input, "resource", {}), "tenant", "(none)")
}

# Data residency: a tenant pinned to a region is served only there.
default service_region := "unknown"

service_region := input.context.service_region

deny contains sprintf("data residency: tenant region %s, service region %s", [region, service_region]) if {
	region := input.resource.region
	region != service_region
}

# The account a request touches, as the risk bundle keys it.
account_key := sprintf("%s/%s", [input.resource.tenant, input.resource.account])

# Risk tiers, from the risk bundle when present.
default tier := "low"

tier := data.risk.tiers[account_key]

# Frozen accounts: no money moves in or out, whoever asks; reads stay open so the account
# can be examined.
money_rpcs := {"Deposit", "Withdraw", "Transfer"}

deny contains "account frozen by a compliance officer" if {
	rpc in money_rpcs
	data.risk.frozen[account_key]
}

deny contains "receiving account frozen by a compliance officer" if {
	rpc == "Transfer"
	data.risk.frozen[sprintf("%s/%s", [input.resource.tenant, input.resource.counterparty])]
}

deny contains "receiving account blocked by risk tier" if {
	rpc == "Transfer"
	data.risk.tiers[sprintf("%s/%s", [input.resource.tenant, input.resource.counterparty])] == "blocked"
}

# A job's encrypted results go to the roles that move money, not to auditors, who see
# metadata only.
results_roles := {"treasury", "teller"}

deny contains sprintf("roles %v may not receive encrypted results", [roles]) if {
	object.get(input.resource, "include_results", false) == true
	not is_admin
	count({role | some role in roles; role in results_roles}) == 0
}

# Revoked tenant keys: nothing more is computed, stored or returned under them, whoever
# asks. Metadata stays readable.
ciphertext_rpcs := {"OpenAccount", "Deposit", "Withdraw", "Transfer", "GetBalance", "Aggregate"}

deny contains "tenant key revoked by a compliance officer" if {
	rpc in ciphertext_rpcs
	data.risk.revoked_keys[sprintf("%s/%s", [input.resource.tenant, input.resource.key_id])]
}

known_tiers := {"low", "medium", "high", "blocked"}

limited_tiers := {"medium", "high"}

limited_rpcs := {"Transfer", "Withdraw"}

obligation_keys := {"max_amount", "window_limit", "window_seconds"}

deny contains "account blocked by risk tier" if tier == "blocked"

# A tier this policy does not know (a typo in the risk bundle) must not mean "low".
deny contains sprintf("unknown risk tier %v", [tier]) if not tier in known_tiers

# A limited tier without configured limits must not mean "no limits".
deny contains sprintf("risk tier %s has no limits configured", [tier]) if {
	rpc in limited_rpcs
	tier in limited_tiers
	not data.risk.limits[tier]
}

default obligations := {}

obligations := {key: value |
	some key, value in data.risk.limits[tier]
	key in obligation_keys
} if {
	rpc in limited_rpcs
	tier in limited_tiers
}

reasons contains reason if some reason in deny

reasons contains sprintf("risk tier %s: limits apply", [tier]) if {
	allow
	count(obligations) > 0
}

decision := {
	"allow": allow,
	"reasons": sort(reasons),
	"obligations": obligations,
}
