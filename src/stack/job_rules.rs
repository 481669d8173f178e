//! `ci: mapping:` — per-package runner settings of the generated build jobs, like the
//! `submapping` of `spack ci`: rules matching packages by name, the first matching rule
//! wins. A rule sets runner tags, the job image, a timeout and job variables; on GitHub
//! these are the job's `runs-on` labels, `container`, `timeout-minutes` and `env`.
//!
//! ```yaml
//! ci:
//!   mapping:
//!     - match: [llvm, "gcc*", "py-tensorflow"]
//!       tags: [x86_64, large]
//!       image: registry.example.com/build/big:1
//!       timeout: 6h
//!       variables: { MAKEFLAGS: "-j32" }
//!     - match: ["*"]
//!       tags: [x86_64, small]
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration;

/// One rule of `ci: mapping:`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobRule {
    /// Package names the rule applies to: globs where `*` is any run of characters, `?` one
    /// character and `[abc]` one of a set (e.g. `llvm*`, `py-*`, `*`).
    #[serde(rename = "match")]
    pub patterns: Vec<String>,
    /// Runner tags (GitLab `tags:`, GitHub `runs-on` labels), replacing the shared ones.
    pub tags: Option<Vec<String>>,
    /// Job image (GitLab `image:`, GitHub `container:`), replacing the shared one.
    pub image: Option<String>,
    /// Job timeout, e.g. `90m`, `6h` or seconds (GitLab `timeout:`, GitHub `timeout-minutes`).
    pub timeout: Option<String>,
    /// Job variables (GitLab `variables:`, GitHub job `env:`), added to the shared ones.
    pub variables: BTreeMap<String, String>,
}

/// A rule of `ci: mapping:` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ci.mapping[{index}]: {message}")]
pub struct RuleError {
    /// The rule's position in the list (0-based, as `ci.mapping[N]`).
    pub index: usize,
    /// What is wrong.
    pub message: String,
}

/// Checked rules, ready to match package names.
#[derive(Debug, Clone)]
pub struct Rules<'a> {
    rules: Vec<(&'a JobRule, Vec<glob::Pattern>, Option<Duration>)>,
}

impl<'a> Rules<'a> {
    /// Checks every rule: at least one valid pattern, a valid timeout, variable names.
    pub fn new(rules: &'a [JobRule]) -> Result<Rules<'a>, RuleError> {
        let mut out = Vec::with_capacity(rules.len());
        for (index, rule) in rules.iter().enumerate() {
            let fail = |message: String| RuleError { index, message };
            if rule.patterns.is_empty() {
                return Err(fail("`match:` lists no package names".into()));
            }
            let mut patterns = Vec::with_capacity(rule.patterns.len());
            for p in &rule.patterns {
                patterns.push(glob::Pattern::new(p).map_err(|e| fail(format!("`match: {p}` is not a glob: {e}")))?);
            }
            let timeout = match &rule.timeout {
                None => None,
                Some(t) => Some(duration::parse(t).ok_or_else(|| {
                    fail(format!(
                        "`timeout: {t}` is not a duration like `90m`, `6h` or a number of seconds"
                    ))
                })?),
            };
            if let Some(k) = rule.variables.keys().find(|k| !super::yaml::valid_env_name(k)) {
                return Err(fail(format!("`variables:` has `{k}`, which is not a variable name")));
            }
            if rule
                .tags
                .as_ref()
                .is_some_and(|t| t.iter().any(|t| t.trim().is_empty()))
            {
                return Err(fail("`tags:` has an empty tag".into()));
            }
            out.push((rule, patterns, timeout));
        }
        Ok(Rules { rules: out })
    }

    /// The first rule matching package `name`, with its timeout.
    pub fn find(&self, name: &str) -> Option<(&'a JobRule, Option<Duration>)> {
        self.position(name).map(|i| self.get(i))
    }

    /// The index of the first rule matching package `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.rules
            .iter()
            .position(|(_, patterns, _)| patterns.iter().any(|p| p.matches(name)))
    }

    /// Rule `i` (an index from [`Rules::position`]) with its timeout.
    pub fn get(&self, i: usize) -> (&'a JobRule, Option<Duration>) {
        let (rule, _, timeout) = &self.rules[i];
        (*rule, *timeout)
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(patterns: &[&str]) -> JobRule {
        JobRule {
            patterns: patterns.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn first_matching_rule_wins() {
        let mut big = rule(&["llvm", "gcc*"]);
        big.timeout = Some("6h".into());
        big.tags = Some(vec!["large".into()]);
        let py = rule(&["py-?ump[xy]"]);
        let rest = rule(&["*"]);
        let list = [big.clone(), py.clone(), rest.clone()];
        let rules = Rules::new(&list).unwrap();
        let (r, t) = rules.find("gcc-runtime").unwrap();
        assert_eq!((r, t), (&big, Some(Duration::from_secs(6 * 3600))));
        assert_eq!(rules.find("llvm").unwrap().0, &big);
        assert_eq!(
            rules.find("llvm-openmp").unwrap().0,
            &rest,
            "a name without `*` matches exactly"
        );
        assert_eq!(rules.find("py-numpy").unwrap().0, &py);
        assert_eq!(rules.find("zlib").unwrap().0, &rest);
        assert!(Rules::new(&list[..2]).unwrap().find("zlib").is_none());
        assert!(Rules::new(&[]).unwrap().is_empty());
    }

    #[test]
    fn bad_rules_are_named() {
        let err = |r: JobRule| Rules::new(&[rule(&["*"]), r]).unwrap_err().to_string();
        assert_eq!(err(rule(&[])), "ci.mapping[1]: `match:` lists no package names");
        assert!(err(rule(&["[oops"])).starts_with("ci.mapping[1]: `match: [oops` is not a glob"));
        let mut t = rule(&["a"]);
        t.timeout = Some("soon".into());
        assert_eq!(
            err(t),
            "ci.mapping[1]: `timeout: soon` is not a duration like `90m`, `6h` or a number of seconds"
        );
        let mut v = rule(&["a"]);
        v.variables.insert("NOT-OK".into(), "1".into());
        assert_eq!(
            err(v),
            "ci.mapping[1]: `variables:` has `NOT-OK`, which is not a variable name"
        );
        let mut e = rule(&["a"]);
        e.tags = Some(vec![" ".into()]);
        assert_eq!(err(e), "ci.mapping[1]: `tags:` has an empty tag");
    }
}
