//! Rebuilds the CLI when the shipped policy (embedded by `include_dir!`) changes.

fn main() {
    println!("cargo:rerun-if-changed=../../policies");
}
