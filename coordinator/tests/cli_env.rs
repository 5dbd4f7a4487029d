//! Operations conventions of the `piface` command line, over its real definitions: every option
//! of every subcommand is also read from a `PIFACE_*` variable (and that variable sets it as the
//! flag would), and the shell completion scripts are valid. One test per concern, in its own
//! process (this file): the environment is process-wide.

use std::ffi::OsString;
use std::process::Command;

use clap::ArgAction;
use piface_coordinator::cli::command;

/// Every option, with the subcommand path that reaches it: (path, arg).
fn options() -> Vec<(Vec<String>, clap::Arg)> {
    fn walk(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, clap::Arg)>) {
        for arg in cmd.get_arguments() {
            let automatic = matches!(
                arg.get_action(),
                ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
            );
            if !arg.is_positional() && !automatic {
                out.push((path.clone(), arg.clone()));
            }
        }
        for sub in cmd.get_subcommands() {
            let mut p = path.clone();
            p.push(sub.get_name().to_string());
            walk(sub, p, out);
        }
    }
    let mut out = Vec::new();
    walk(&command(), Vec::new(), &mut out);
    out
}

/// Positional arguments a subcommand needs before it parses.
fn required_positionals(path: &[String]) -> Vec<String> {
    match path.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["import-state"] => vec!["/tmp/state.json".into()],
        ["agent", "remove"] => vec!["box".into()],
        ["completions"] => vec!["bash".into()],
        _ => Vec::new(),
    }
}

fn argv(path: &[String], extra: &[String]) -> Vec<OsString> {
    std::iter::once("piface".to_string())
        .chain(path.iter().cloned())
        .chain(required_positionals(path))
        .chain(extra.iter().cloned())
        .map(OsString::from)
        .collect()
}

/// The matches of the innermost subcommand of `path`.
fn leaf<'a>(mut m: &'a clap::ArgMatches, path: &[String]) -> &'a clap::ArgMatches {
    for name in path {
        m = m.subcommand_matches(name).unwrap_or_else(|| panic!("no {name} in the matches"));
    }
    m
}

fn raw(m: &clap::ArgMatches, id: &str) -> Vec<OsString> {
    m.get_raw(id).map(|v| v.map(OsString::from).collect()).unwrap_or_default()
}

#[test]
fn every_option_is_also_a_piface_variable_that_sets_it() {
    let candidates = [
        "3",
        "/tmp/piface-env-test",
        "127.0.0.2",
        "10.0.0.0/8",
        "2h",
        "0.0.0.0:9000",
        "x@example.com",
        "mailto:x@example.com",
    ];
    let all = options();
    assert!(all.len() > 60, "the walk found only {} options", all.len());
    let mut checked = 0;
    for (path, arg) in all {
        let long = arg.get_long().unwrap_or_else(|| panic!("{path:?}: an option without a long name"));
        let env = arg.get_env().unwrap_or_else(|| panic!("{path:?} --{long} has no environment variable"));
        let env = env.to_str().unwrap().to_string();
        assert!(env.starts_with("PIFACE_"), "{path:?} --{long}: {env}");
        let id = arg.get_id().as_str().to_string();
        let is_flag = matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse | ArgAction::Count);

        // A value the option takes on the command line: its last possible value, else the first
        // of the candidates that parses.
        let possible: Vec<String> = arg.get_possible_values().iter().map(|p| p.get_name().to_string()).collect();
        let value = if is_flag {
            None
        } else {
            let tries: Vec<String> = match possible.last() {
                Some(p) => vec![p.clone()],
                None => candidates.iter().map(|c| c.to_string()).collect(),
            };
            let found = tries
                .into_iter()
                .find(|v| command().try_get_matches_from(argv(&path, &[format!("--{long}"), v.clone()])).is_ok());
            Some(found.unwrap_or_else(|| panic!("{path:?} --{long}: no candidate value parses")))
        };
        let flag_args: Vec<String> = std::iter::once(format!("--{long}")).chain(value.clone()).collect();
        let by_flag = command().try_get_matches_from(argv(&path, &flag_args)).unwrap();

        std::env::set_var(&env, value.as_deref().unwrap_or("true"));
        let by_env = command().try_get_matches_from(argv(&path, &[]));
        std::env::remove_var(&env);
        let by_env = by_env.unwrap_or_else(|e| panic!("{path:?} {env}: {e}"));

        // Set but empty is unset, whatever the option's type (compose files forward
        // `PIFACE_X: ${PIFACE_X:-}`).
        std::env::set_var(&env, "");
        let empty = command().try_get_matches_from(argv(&path, &[]));
        std::env::remove_var(&env);
        let empty = empty.unwrap_or_else(|e| panic!("{path:?} {env}= (empty): {e}"));
        assert_ne!(
            leaf(&empty, &path).value_source(&id),
            Some(clap::parser::ValueSource::EnvVariable),
            "{path:?}: an empty {env} set --{long}"
        );

        let (f, e) = (leaf(&by_flag, &path), leaf(&by_env, &path));
        assert_eq!(
            e.value_source(&id),
            Some(clap::parser::ValueSource::EnvVariable),
            "{path:?} {env} did not set --{long}"
        );
        if is_flag {
            assert_eq!(f.get_flag(&id), e.get_flag(&id), "{path:?} {env}");
        } else {
            assert_eq!(raw(f, &id), raw(e, &id), "{path:?} {env}");
        }
        checked += 1;
    }
    // The command line wins over the environment.
    std::env::set_var("PIFACE_PORT", "9001");
    let m = command().try_get_matches_from(["piface", "serve", "--port", "9002"]).unwrap();
    std::env::remove_var("PIFACE_PORT");
    assert_eq!(m.subcommand_matches("serve").unwrap().get_one::<u16>("port"), Some(&9002));
    eprintln!("{checked} options checked");
}

#[test]
fn completion_scripts_are_valid() {
    let piface = env!("CARGO_BIN_EXE_piface");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = Command::new(piface).args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}: {}", String::from_utf8_lossy(&out.stderr));
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains("piface") && script.contains("speech-gpu-name"), "{shell}: {script}");
    }
    let out = Command::new(piface).args(["completions", "bash"]).output().unwrap();
    let check = Command::new("bash")
        .args(["-n"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&out.stdout)?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(check.status.success(), "bash -n: {}", String::from_utf8_lossy(&check.stderr));
    // And bash can load it and complete a subcommand.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("piface.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let probe = format!(
        "source {}; COMP_WORDS=(piface co); COMP_CWORD=1; COMP_LINE='piface co'; COMP_POINT=9; _piface piface co piface; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let done = Command::new("bash").args(["-c", &probe]).output().unwrap();
    let words = String::from_utf8_lossy(&done.stdout);
    assert!(words.lines().any(|w| w == "coordinator"), "completions for `piface co`: {words:?}");
    assert!(words.lines().any(|w| w == "completions"), "completions for `piface co`: {words:?}");
}
