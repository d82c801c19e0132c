//! Declares every IPC command to Tauri so each gets an `allow-<command>` permission, which the
//! capability files grant per window. The names come from the `commands!` list itself.

fn main() {
    let source = include_str!("src/commands.rs");
    let block = source
        .split_once("commands! {")
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let names: &'static [&'static str] = block
        .lines()
        .filter_map(|l| l.strip_prefix("    fn "))
        .filter_map(|l| l.split_once('('))
        .map(|(name, _)| &*Box::leak(name.trim().to_string().into_boxed_str()))
        .collect::<Vec<_>>()
        .leak();
    println!("cargo:rerun-if-changed=src/commands.rs");
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(names)),
    )
    .unwrap_or_else(|e| panic!("tauri-build: {e:#}"));
}
