//! A small hand-written parser for `--flag` and `--option VALUE` arguments (no dependency, so
//! the library's dependency tree stays what the wasm build needs).

use std::collections::HashMap;

use webnlu::{Error, Result};

pub struct Arguments {
    values: HashMap<String, String>,
    flags: Vec<String>,
    pub positional: Vec<String>,
}

impl Arguments {
    /// `with_value`: options that take a value; `flags`: options that do not.
    pub fn parse(args: &[String], with_value: &[&str], flags: &[&str]) -> Result<Arguments> {
        let mut parsed = Arguments {
            values: HashMap::new(),
            flags: Vec::new(),
            positional: Vec::new(),
        };
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            if let Some(name) = arg.strip_prefix("--") {
                let (name, inline) = match name.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (name, None),
                };
                if with_value.contains(&name) {
                    let value = match inline {
                        Some(v) => v,
                        None => {
                            i += 1;
                            args.get(i)
                                .cloned()
                                .ok_or_else(|| Error::invalid(format!("--{name} needs a value")))?
                        }
                    };
                    parsed.values.insert(name.to_string(), value);
                } else if flags.contains(&name) && inline.is_none() {
                    parsed.flags.push(name.to_string());
                } else {
                    return Err(Error::invalid(format!("unknown option --{name}")));
                }
            } else {
                parsed.positional.push(arg.clone());
            }
            i += 1;
        }
        Ok(parsed)
    }

    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }

    pub fn number(&self, name: &str) -> Result<Option<usize>> {
        match self.value(name) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                Error::invalid(format!(
                    "--{name} must be a non-negative integer, got {v:?}"
                ))
            }),
        }
    }
}
