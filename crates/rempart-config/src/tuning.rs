//! `[tuning]`: where `rempart tuning run` trains inside the boundary, and the server that
//! serves the adapters it makes.
//!
//! ```toml
//! [tuning]
//! # The program a job runs on (no shell): its arguments, then the job's `train_lora.py`.
//! runner = ["/opt/tuning/venv/bin/python3", "-u"]
//! # A vLLM server started with `--enable-lora` (VLLM_ALLOW_RUNTIME_LORA_UPDATING=1): a
//! # finished job's adapter is loaded there under the job's name.
//! adapter_server = "http://gpu01.soc.internal:8000"
//! adapter_server_key_env = "VLLM_API_KEY"
//! ```

use std::path::PathBuf;

use serde::Deserialize;

use crate::Problem;

/// `[tuning]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tuning {
    /// The program and its fixed arguments; `None`: `tuning run` is not configured.
    pub runner: Option<(PathBuf, Vec<String>)>,
    /// The base URL of an OpenAI-compatible server that loads LoRA adapters at run time
    /// (vLLM's `/v1/load_lora_adapter`).
    pub adapter_server: Option<String>,
    /// The variable holding that server's API key, if it wants one.
    pub adapter_server_key_env: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTuning {
    runner: Option<Vec<String>>,
    adapter_server: Option<String>,
    adapter_server_key_env: Option<String>,
}

/// Programs that would run the job's script through a shell, which `runner` must not be.
const SHELLS: [&str; 8] = ["sh", "bash", "dash", "zsh", "ksh", "fish", "cmd.exe", "powershell"];

pub(crate) fn validate(raw: RawTuning, problems: &mut Vec<Problem>) -> Tuning {
    let mut out = Tuning::default();
    if let Some(runner) = raw.runner {
        match runner.split_first() {
            None => problems.push(Problem {
                path: "tuning.runner".into(),
                message: "give the program, then its arguments".into(),
            }),
            Some((program, args)) => {
                let path = PathBuf::from(program);
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().to_ascii_lowercase())
                    .unwrap_or_default();
                if !path.is_absolute() {
                    problems.push(Problem {
                        path: "tuning.runner".into(),
                        message: format!("`{program}` is not an absolute path (no search of PATH)"),
                    });
                } else if SHELLS.contains(&name.as_str()) {
                    problems.push(Problem {
                        path: "tuning.runner".into(),
                        message: format!("`{program}` is a shell: name the interpreter itself (python3)"),
                    });
                } else {
                    out.runner = Some((path, args.to_vec()));
                }
            }
        }
    }
    if let Some(url) = raw.adapter_server {
        if url.starts_with("https://") || url.starts_with("http://") {
            out.adapter_server = Some(url.trim_end_matches('/').to_owned());
        } else {
            problems.push(Problem {
                path: "tuning.adapter_server".into(),
                message: format!("`{url}` is not an http:// or https:// URL"),
            });
        }
    }
    out.adapter_server_key_env = raw.adapter_server_key_env;
    out
}

#[cfg(test)]
mod tests {
    use crate::Config;

    #[test]
    fn a_runner_is_a_program_with_its_arguments_never_a_shell() {
        let cfg = Config::parse(
            "version = 1\n[tuning]\nrunner = [\"/usr/bin/python3\", \"-u\"]\nadapter_server = \"http://127.0.0.1:8000/\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(
            cfg.tuning.runner,
            Some(("/usr/bin/python3".into(), vec!["-u".to_owned()]))
        );
        assert_eq!(cfg.tuning.adapter_server.as_deref(), Some("http://127.0.0.1:8000"));
        for (text, says) in [
            ("runner = [\"/bin/sh\", \"-c\"]", "is a shell"),
            ("runner = [\"python3\"]", "not an absolute path"),
            ("runner = []", "give the program"),
            ("adapter_server = \"vllm:8000\"", "not an http"),
            ("gpu = 1", "gpu"),
        ] {
            let err = Config::parse(&format!("version = 1\n[tuning]\n{text}\n"), "t").unwrap_err();
            assert!(
                err.problems
                    .iter()
                    .any(|p| format!("{}: {}", p.path, p.message).contains(says)),
                "{text}: {:?}",
                err.problems
            );
        }
    }
}
