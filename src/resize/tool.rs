//! Running an external tool and turning its failure into an error that shows what it
//! said. A resize that fails silently would leave a filesystem the user trusts broken.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ToolError {
    #[error("cannot run {tool}: {source} (is it installed?)")]
    Spawn {
        tool: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{tool} {args} failed with exit code {code}:\n{stderr}")]
    Failed {
        tool: String,
        args: String,
        code: i32,
        stderr: String,
    },
    #[error("{tool}: could not understand its output: {what}")]
    Parse { tool: String, what: String },
    #[error("{what} is not supported")]
    Unsupported { what: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Output of a tool that finished with an accepted exit code.
#[derive(Debug)]
pub struct ToolOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `tool args`, feeding `stdin` if given. Exit codes in `ok_codes` are success.
pub fn run_tool(
    tool: &str,
    args: &[&str],
    stdin: Option<&str>,
    ok_codes: &[i32],
) -> Result<ToolOutput, ToolError> {
    run_tool_env(tool, args, &[], stdin, ok_codes)
}

/// `run_tool` with extra environment variables (mtools' `MTOOLS_SKIP_CHECK`, `TZ`).
pub fn run_tool_env(
    tool: &str,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
    ok_codes: &[i32],
) -> Result<ToolOutput, ToolError> {
    let mut child = Command::new(tool)
        .args(args)
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| ToolError::Spawn {
            tool: tool.into(),
            source,
        })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A tool that exits without reading its prompt answer is not an error here.
        let _ = pipe.write_all(input.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|source| ToolError::Spawn {
            tool: tool.into(),
            source,
        })?;
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !ok_codes.contains(&code) {
        let shown = if stderr.trim().is_empty() {
            &stdout
        } else {
            &stderr
        };
        return Err(ToolError::Failed {
            tool: tool.into(),
            args: args.join(" "),
            code,
            stderr: tail(shown, 20),
        });
    }
    Ok(ToolOutput {
        code,
        stdout,
        stderr,
    })
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_shows_stderr_and_code() {
        let e = run_tool("sh", &["-c", "echo boom >&2; exit 7"], None, &[0]).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("exit code 7") && msg.contains("boom"), "{msg}");
    }

    #[test]
    fn missing_tool_is_spawn_error() {
        assert!(matches!(
            run_tool("/nonexistent/tool", &[], None, &[0]),
            Err(ToolError::Spawn { .. })
        ));
    }

    #[test]
    fn stdin_is_fed() {
        let o = run_tool("sh", &["-c", "read a; echo got $a"], Some("y\n"), &[0]).unwrap();
        assert_eq!(o.stdout.trim(), "got y");
    }
}
