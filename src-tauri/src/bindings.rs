//! TypeScript bindings generated from the command list: one `export function` per command
//! (named in camelCase, calling `invoke` with the command's snake_case name) and a
//! declaration of every type they take or return, gathered through ts-rs. A test compares the
//! result with `ui/src/bindings.ts`, so stale bindings fail CI.

use std::any::TypeId;
use std::collections::{BTreeMap, HashSet};

use ts_rs::{Config, TS, TypeVisitor};

pub struct Bindings {
    cfg: Config,
    decls: BTreeMap<String, String>,
    seen: HashSet<TypeId>,
    functions: Vec<String>,
}

impl Default for Bindings {
    fn default() -> Self {
        Self {
            // serde writes i64 as a JSON number, never a bigint.
            cfg: Config::new().with_large_int("number"),
            decls: BTreeMap::new(),
            seen: HashSet::new(),
            functions: Vec::new(),
        }
    }
}

struct Collect<'a>(&'a mut Bindings);

impl TypeVisitor for Collect<'_> {
    fn visit<T: TS + 'static + ?Sized>(&mut self) {
        if !self.0.seen.insert(TypeId::of::<T>()) {
            return;
        }
        if T::output_path().is_some() {
            let decl = T::decl(&self.0.cfg);
            self.0.decls.insert(T::ident(&self.0.cfg), decl);
        }
        T::visit_dependencies(self);
        T::visit_generics(self);
    }
}

fn camel(name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

impl Bindings {
    /// The TypeScript name of `T`, declaring it (and what it uses) in the output.
    pub fn ty<T: TS + 'static + ?Sized>(&mut self) -> String {
        Collect(self).visit::<T>();
        T::name(&self.cfg)
    }

    pub fn command<Ret: TS + 'static>(
        &mut self,
        name: &str,
        args: Vec<(&str, String)>,
        docs: &[&str],
    ) {
        let ret = self.ty::<Ret>();
        let params: Vec<String> = args.iter().map(|(a, t)| format!("{a}: {t}")).collect();
        let names: Vec<&str> = args.iter().map(|(a, _)| *a).collect();
        let call = if names.is_empty() {
            format!("invoke(\"{name}\")")
        } else {
            format!("invoke(\"{name}\", {{ {} }})", names.join(", "))
        };
        let doc = if docs.is_empty() {
            String::new()
        } else {
            let lines: Vec<String> = docs.iter().map(|d| format!(" *{d}")).collect();
            format!("/**\n{}\n */\n", lines.join("\n"))
        };
        self.functions.push(format!(
            "{doc}export function {}({}): Promise<{ret}> {{\n  return {call};\n}}\n",
            camel(name),
            params.join(", ")
        ));
    }

    pub fn render(mut self) -> String {
        crate::commands::typescript(&mut self);
        // What a window's event channel carries (declared by `subscribe_events` already).
        self.ty::<crate::shell::UiEvent>();
        self.ty::<crate::ipc::IpcError>();
        let mut out = String::from(
            "// Generated from src-tauri/src/commands.rs by\n\
             // `UPDATE_BINDINGS=1 cargo test -p switchboard-app bindings`. Do not edit.\n\
             /* eslint-disable */\n\
             import { type Channel, invoke } from \"@tauri-apps/api/core\";\n\n",
        );
        for decl in self.decls.values() {
            out.push_str("export ");
            out.push_str(decl);
            out.push_str("\n\n");
        }
        for f in &self.functions {
            out.push_str(f);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_are_fresh() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/bindings.ts");
        let fresh = Bindings::default().render();
        if std::env::var_os("UPDATE_BINDINGS").is_some() {
            std::fs::write(&path, &fresh).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "ui/src/bindings.ts is stale: run `UPDATE_BINDINGS=1 cargo test -p switchboard-app bindings`"
        );
    }

    #[test]
    fn every_command_is_bound_and_every_type_declared() {
        let ts = Bindings::default().render();
        for c in crate::commands::COMMANDS {
            assert!(
                ts.contains(&format!("invoke(\"{c}\"")),
                "{c} has no binding"
            );
        }
        for t in [
            "ProfileInfo",
            "ConnState",
            "Conversation",
            "Wallet",
            "IpcError",
            "UiEvent",
        ] {
            assert!(
                ts.contains(&format!("export type {t} ")),
                "{t} is not declared"
            );
        }
        assert!(!ts.contains("bigint"), "i64 crosses IPC as a JSON number");
    }
}
