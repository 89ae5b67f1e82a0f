//! The policy engine: bundles compiled into a warmed regorus engine, asked for one decision
//! per request.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bundle::Bundle;
use crate::decision_log::{BundleRevision, DecisionEvent};
use crate::error::PolicyError;
use crate::vm::VmRule;
use crate::{mask, roots, rules};

/// What the policy decided for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allow: bool,
    /// Why, in words meant for the caller and the audit log (sorted).
    pub reasons: Vec<String>,
    /// Limits the caller must enforce when `allow` is true.
    pub obligations: Obligations,
    /// The decision object exactly as the policy produced it.
    pub result: Value,
}

/// Limits attached to an allowed request, from the account's risk tier.
///
/// Unknown fields are refused: an obligation the service does not know how to enforce
/// must not be silently dropped, so such a decision fails (and the request is denied).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Obligations {
    /// Largest single amount allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_amount: Option<u64>,
    /// Largest total allowed within `window_seconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_limit: Option<u64>,
    /// Length of the window `window_limit` applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<u64>,
}

/// Which of regorus's evaluators decides requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evaluator {
    /// The decision and mask rules run as RVM bytecode (see [`crate::vm`]).
    Vm,
    /// The tree-walking interpreter decides, because the RVM could not be used; `reason`
    /// says why (a construct its compiler refuses, or a warm-up result that differed).
    Interpreter {
        /// Why the compiled form is not used.
        reason: String,
    },
}

impl fmt::Display for Evaluator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Evaluator::Vm => f.write_str("rvm"),
            Evaluator::Interpreter { reason } => write!(f, "interpreter ({reason})"),
        }
    }
}

/// Compiled policies and data of a set of bundles, ready to decide.
///
/// Cheap to clone and shareable across threads: every evaluation runs on its own machine
/// (or, for the interpreter, its own clone of the warmed engine).
#[derive(Clone)]
pub struct PolicyEngine {
    engine: regorus::Engine,
    /// The decision rule for the interpreter, compiled once.
    decision: regorus::CompiledPolicy,
    /// The decision and mask rules as bytecode, when the RVM can run them.
    vm: Option<VmRules>,
    evaluator: Evaluator,
    revisions: BTreeMap<String, String>,
    mask_defined: bool,
}

/// The rules asked per request, compiled for the RVM.
#[derive(Clone)]
struct VmRules {
    decision: VmRule,
    mask: Option<VmRule>,
}

impl fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("revisions", &self.revisions)
            .field("evaluator", &self.evaluator)
            .field("mask_defined", &self.mask_defined)
            .finish_non_exhaustive()
    }
}

impl PolicyEngine {
    /// The rule every request is decided by.
    pub const DECISION_PATH: &'static str = "data.blindledger.authz.decision";
    /// The rule that masks decision-log events, as in OPA.
    pub const MASK_PATH: &'static str = "data.system.log.mask";

    /// Compiles `bundles` into one engine and evaluates the decision once with `warm_input`.
    ///
    /// Fails when roots overlap (within or across bundles), when a package or data lies
    /// outside its bundle's roots, when a policy does not compile (the error names the file
    /// as `<bundle>/<path>`), or when the warm-up decision is not a well-formed decision.
    pub fn build(bundles: &[Bundle], warm_input: &Value) -> Result<PolicyEngine, PolicyError> {
        roots::check_no_overlap(bundles)?;
        let mut engine = regorus::Engine::new();
        let mut revisions = BTreeMap::new();
        for bundle in bundles {
            let revision = bundle.manifest.revision.clone();
            if revisions.insert(bundle.name.clone(), revision).is_some() {
                return Err(PolicyError::DuplicateBundle {
                    name: bundle.name.clone(),
                });
            }
            load_bundle(&mut engine, bundle)?;
        }
        let mask_defined = rules::declares_rule(&engine, &["system", "log"], "mask")?;
        // The first evaluation analyses and schedules every module; engines cloned from this
        // one afterwards start from that work instead of redoing it per request.
        engine.set_input(to_rego(warm_input)?);
        let warm = parse_decision(eval(&mut engine, Self::DECISION_PATH)?)?;
        let decision = engine
            .clone()
            .compile_with_entrypoint(&Self::DECISION_PATH.into())
            .map_err(|e| PolicyError::Eval {
                path: Self::DECISION_PATH.to_string(),
                message: format!("{e:#}"),
            })?;
        let (vm, evaluator) = match compile_vm(&engine, mask_defined, warm_input, &warm) {
            Ok(rules) => (Some(rules), Evaluator::Vm),
            Err(reason) => (None, Evaluator::Interpreter { reason }),
        };
        Ok(PolicyEngine {
            engine,
            decision,
            vm,
            evaluator,
            revisions,
            mask_defined,
        })
    }

    /// Which evaluator decides requests.
    pub fn evaluator(&self) -> &Evaluator {
        &self.evaluator
    }

    /// Decides one request.
    ///
    /// Fails closed: an evaluation error, an undefined decision, a result that is not an
    /// object, an `allow` that is missing or not a boolean, or malformed `reasons` or
    /// `obligations` are all errors, which callers must treat as a denial.
    ///
    /// Runs on the RVM when the engine has it ([`PolicyEngine::evaluator`]); the figures
    /// of both evaluators are in benches/README.md (`cargo bench --workspace --bench policy`).
    pub fn decide(&self, input: &Value) -> Result<Decision, PolicyError> {
        match &self.vm {
            Some(vm) => decision_from(vm.decision.eval(to_rego(input)?)?),
            None => self.decide_interpreted(input),
        }
    }

    /// Decides one request with the interpreter, whatever [`PolicyEngine::evaluator`] says:
    /// the reference the compiled form is checked against.
    pub fn decide_interpreted(&self, input: &Value) -> Result<Decision, PolicyError> {
        let value = self
            .decision
            .eval_with_input(to_rego(input)?)
            .map_err(|e| PolicyError::Eval {
                path: Self::DECISION_PATH.to_string(),
                message: format!("{e:#}"),
            })?;
        decision_from(value)
    }

    /// Returns each bundle's name and manifest revision.
    pub fn revisions(&self) -> BTreeMap<String, String> {
        self.revisions.clone()
    }

    /// Returns a decision-log event for `input` and its decision, stamped with a new id,
    /// the current time and the bundles' revisions; `path` is OPA's slash form of
    /// [`PolicyEngine::DECISION_PATH`].
    pub fn decision_event(&self, input: &Value, decision: Option<&Decision>) -> DecisionEvent {
        let path = Self::DECISION_PATH
            .trim_start_matches("data.")
            .replace('.', "/");
        let mut event =
            DecisionEvent::new(&path, input.clone(), decision.map(|d| d.result.clone()));
        event.bundles = self
            .revisions
            .iter()
            .map(|(name, revision)| {
                (
                    name.clone(),
                    BundleRevision {
                        revision: revision.clone(),
                    },
                )
            })
            .collect();
        event
    }

    /// Applies `system.log.mask` to `event`, as OPA does before logging it.
    ///
    /// The rule is evaluated with the event as input. Each string it returns is a path such
    /// as `/input/context/risk` to erase (listed in `event.erased`); each object
    /// `{"op": "upsert", "path": ..., "value": ...}` replaces a value (listed in
    /// `event.masked`). Paths must start with `/input` or `/result`; paths that are absent
    /// are skipped. With no mask rule, or an undefined one, nothing changes.
    pub fn mask(&self, event: &mut DecisionEvent) -> Result<(), PolicyError> {
        if !self.mask_defined {
            return Ok(());
        }
        let as_json = serde_json::to_value(&*event).map_err(|e| PolicyError::Conversion {
            what: "decision event",
            message: e.to_string(),
        })?;
        let rules = match self.vm.as_ref().and_then(|vm| vm.mask.as_ref()) {
            Some(mask) => defined(Self::MASK_PATH, mask.eval(to_rego(&as_json)?)?),
            None => {
                let mut engine = self.engine.clone();
                engine.set_input(to_rego(&as_json)?);
                eval(&mut engine, Self::MASK_PATH)
            }
        };
        match rules {
            Ok(rules) => mask::apply(&rules, event),
            Err(PolicyError::UndefinedDecision { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Compiles the decision (and mask) rules for the RVM and checks the compiled decision
/// against the interpreter's on the warm-up input; `Err` says why the RVM is not used.
fn compile_vm(
    engine: &regorus::Engine,
    mask_defined: bool,
    warm_input: &Value,
    interpreted: &Decision,
) -> Result<VmRules, String> {
    let decision = VmRule::compile(engine, PolicyEngine::DECISION_PATH)?;
    let mask = if mask_defined {
        Some(VmRule::compile(engine, PolicyEngine::MASK_PATH)?)
    } else {
        None
    };
    let compiled = to_rego(warm_input)
        .and_then(|input| decision.eval(input))
        .and_then(decision_from)
        .map_err(|e| format!("compiled decision failed on the warm-up input: {e}"))?;
    if compiled.result != interpreted.result {
        return Err(format!(
            "compiled decision {} differs from the interpreter's {} on the warm-up input",
            compiled.result, interpreted.result
        ));
    }
    Ok(VmRules { decision, mask })
}

/// A decision from an evaluated value; undefined is an error (fail closed).
fn decision_from(value: regorus::Value) -> Result<Decision, PolicyError> {
    parse_decision(defined(PolicyEngine::DECISION_PATH, value)?)
}

/// The JSON of a rule's value; undefined is [`PolicyError::UndefinedDecision`].
fn defined(path: &str, value: regorus::Value) -> Result<Value, PolicyError> {
    if value == regorus::Value::Undefined {
        return Err(PolicyError::UndefinedDecision {
            path: path.to_string(),
        });
    }
    serde_json::to_value(&value).map_err(|e| PolicyError::Conversion {
        what: "result",
        message: e.to_string(),
    })
}

/// Adds one bundle's policies and data, checking them against its roots.
fn load_bundle(engine: &mut regorus::Engine, bundle: &Bundle) -> Result<(), PolicyError> {
    let roots = roots::normalized(&bundle.manifest.roots);
    engine.set_rego_v0(bundle.is_rego_v0());
    for (path, source) in bundle.policies() {
        let file = format!("{}/{}", bundle.name, path);
        let compile_error = |e: anyhow::Error| PolicyError::Compile {
            file: file.clone(),
            message: format!("{e:#}"),
        };
        engine
            .add_policy(file.clone(), source.to_string())
            .map_err(compile_error)?;
        let package = engine
            .get_policy_package_components()
            .map_err(compile_error)?
            .pop()
            .map(|p| p.components)
            .unwrap_or_default();
        if !roots::any_contains(&roots, &package.join("/")) {
            return Err(PolicyError::PackageOutsideRoots {
                bundle: bundle.name.clone(),
                file,
                package: package.join("."),
                roots,
            });
        }
    }
    engine.set_rego_v0(false);
    let data = bundle.data()?;
    roots::check_data(&bundle.name, &roots, &data)?;
    engine
        .add_data(to_rego(&data)?)
        .map_err(|e| PolicyError::Data {
            bundle: bundle.name.clone(),
            message: format!("{e:#}"),
        })
}

/// Evaluates one rule; an undefined result is an error.
pub(crate) fn eval(engine: &mut regorus::Engine, path: &str) -> Result<Value, PolicyError> {
    let value = engine
        .eval_rule(path.to_string())
        .map_err(|e| PolicyError::Eval {
            path: path.to_string(),
            message: format!("{e:#}"),
        })?;
    defined(path, value)
}

pub(crate) fn to_rego(value: &Value) -> Result<regorus::Value, PolicyError> {
    regorus::Value::deserialize(value).map_err(|e| PolicyError::Conversion {
        what: "input",
        message: e.to_string(),
    })
}

fn parse_decision(result: Value) -> Result<Decision, PolicyError> {
    let malformed = |what: &str| PolicyError::MalformedDecision(what.to_string());
    let object = result
        .as_object()
        .ok_or_else(|| malformed("decision is not an object"))?;
    let allow = match object.get("allow") {
        Some(Value::Bool(allow)) => *allow,
        Some(_) => return Err(malformed("allow is not a boolean")),
        None => return Err(malformed("allow is missing")),
    };
    let reasons = match object.get("reasons") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|r| r.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| malformed("reasons holds a non-string"))?,
        Some(_) => return Err(malformed("reasons is not an array")),
    };
    let obligations = match object.get("obligations") {
        None => Obligations::default(),
        Some(o) => Obligations::deserialize(o)
            .map_err(|e| PolicyError::MalformedDecision(format!("obligations: {e}")))?,
    };
    Ok(Decision {
        allow,
        reasons,
        obligations,
        result,
    })
}
