# Masking of decision-log events before they leave the service (OPA's system.log.mask).
# Amounts and balances are ciphertexts and never reach the policy input, so the only
# confidential-ish field is the request's risk context (scores from the gateway), which is
# erased. Paths absent from an event are skipped.
package system.log

mask contains "/input/context/risk"
