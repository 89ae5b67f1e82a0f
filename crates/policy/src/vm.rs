//! Rules compiled to regorus's bytecode virtual machine (the RVM).
//!
//! regorus evaluates Rego two ways: its tree-walking interpreter, which handles every
//! language feature, and the RVM, which runs the same rules compiled to register-machine
//! bytecode. On the shipped policy the RVM decides about six times faster (the benches'
//! figures are in benches/README.md), so every rule the gate asks per request runs there.
//! The interpreter stays the reference: an engine only uses a compiled rule after both
//! evaluators agreed on the warm-up input, and falls back to the interpreter when a policy
//! uses something the RVM compiler refuses.

use std::sync::Arc;

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::{Program, RegoVM};

use crate::error::PolicyError;

/// The most bytecode instructions one evaluation may execute, far above what the shipped
/// decision needs (its whole evaluation costs about 240,000 CPU instructions, of which each
/// bytecode instruction is many); a policy that loops past it (a runaway comprehension over
/// a huge data document) fails, and the request it was deciding is denied.
pub const MAX_INSTRUCTIONS: usize = 200_000;

/// One rule compiled to RVM bytecode, with the data it reads.
#[derive(Clone)]
pub(crate) struct VmRule {
    path: &'static str,
    program: Arc<Program>,
    data: regorus::Value,
}

impl VmRule {
    /// Compiles `path` of an engine whose policies and data are all loaded.
    pub(crate) fn compile(engine: &regorus::Engine, path: &'static str) -> Result<Self, String> {
        let compiled = engine
            .clone()
            .compile_with_entrypoint(&path.into())
            .map_err(|e| format!("{e:#}"))?;
        let program =
            Compiler::compile_from_policy(&compiled, &[path]).map_err(|e| e.to_string())?;
        Ok(VmRule {
            path,
            program,
            data: engine.get_data(),
        })
    }

    /// Evaluates the rule for `input` on a fresh machine. A machine keeps per-run state (rule
    /// caches, registers), and a new one costs about 2 µs, so no state is shared between
    /// requests and none needs a lock.
    pub(crate) fn eval(&self, input: regorus::Value) -> Result<regorus::Value, PolicyError> {
        let failed = |e: regorus::rvm::vm::VmError| PolicyError::Eval {
            path: self.path.to_string(),
            message: e.to_string(),
        };
        let mut vm = RegoVM::new();
        vm.load_program(self.program.clone());
        vm.set_max_instructions(MAX_INSTRUCTIONS);
        vm.set_data(self.data.clone()).map_err(failed)?;
        vm.set_input(input);
        vm.execute().map_err(failed)
    }
}
