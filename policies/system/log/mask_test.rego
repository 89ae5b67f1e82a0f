package system.log_test

import data.system.log

test_risk_context_is_erased if {
	log.mask == {"/input/context/risk"} with input as {"input": {"context": {"risk": {"score": 7}}}}
}
