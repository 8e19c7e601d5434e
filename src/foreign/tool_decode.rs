//! Decompressors run as processes: lzop, lzip and lrzip, which Clonezilla offers
//! (`-z3` lzo, its fast choice for years; `-z6`/`-z6p` lzip; `-z7` lrzip) and which
//! shelves of older images hold. They are the reference decoders of their formats
//! (lzop's block checksums, lzip's member CRC32 and sizes, lrzip's rzip pre-pass), and
//! Debian and Buildroot both ship them, so ironclone runs them rather than carry
//! decoders of its own for rarely used formats.
//!
//! The compressed stream (possibly split volumes) is fed to the tool's stdin by a
//! thread, the tool's stdout is the decoded stream, and when stdout ends the tool's
//! exit status is checked: a tool that fails (a damaged file, a truncated one, the
//! tool missing) is a read error carrying the tool's own words, never a stream that
//! merely ends early. A reader dropped before the end kills its tool.

use std::io::{self, Read, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;

/// What a tool may print on stderr that is kept for its error (lrzip prints progress
/// even with -q).
const STDERR_KEEP: u64 = 64 << 10;

/// A decoding tool: its program and the arguments that decode stdin to stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tool {
    pub program: &'static str,
    pub args: &'static [&'static str],
    /// The Debian package that has it, for the "not installed" error.
    pub package: &'static str,
}

pub const LZOP: Tool = Tool {
    program: "lzop",
    args: &["-d", "-c"],
    package: "lzop",
};
pub const LZIP: Tool = Tool {
    program: "lzip",
    args: &["-d", "-c"],
    package: "lzip",
};
pub const LRZIP: Tool = Tool {
    program: "lrzip",
    args: &["-d", "-q"],
    package: "lrzip",
};

/// The decoded stream of a running tool.
pub struct ToolReader {
    tool: Tool,
    child: Child,
    stdout: ChildStdout,
    feeder: Option<JoinHandle<io::Result<()>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    done: bool,
}

impl ToolReader {
    /// Starts `tool` decoding `input`.
    pub fn spawn(tool: Tool, mut input: Box<dyn Read + Send>) -> io::Result<Self> {
        let mut child = Command::new(tool.program)
            .args(tool.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "this image needs `{}` to decode it, which is not installed \
                         (Debian package {})",
                        tool.program, tool.package
                    ),
                ),
                _ => io::Error::new(e.kind(), format!("starting {}: {e}", tool.program)),
            })?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other(format!(
                "{}: no pipes to the process",
                tool.program
            )));
        };
        let feeder = std::thread::spawn(move || {
            let fed = io::copy(&mut input, &mut stdin).and_then(|_| stdin.flush());
            match fed {
                // The tool stopped reading (it failed, or the reader was dropped): its
                // exit status says which.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
                other => other.map(drop),
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut s = stderr;
            let _ = (&mut s).take(STDERR_KEEP).read_to_end(&mut kept);
            // The rest is drained so the tool never blocks on a full pipe.
            let _ = io::copy(&mut s, &mut io::sink());
            kept
        });
        Ok(ToolReader {
            tool,
            child,
            stdout,
            feeder: Some(feeder),
            stderr: Some(stderr),
            done: false,
        })
    }

    /// At the end of stdout: the input fed whole and the tool exited 0, or why not.
    fn finish(&mut self) -> io::Result<()> {
        let status = self.child.wait()?;
        let fed = self.feeder.take().map(|h| h.join());
        let said = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        // A read error of the input (a missing split volume) is the cause; the tool
        // then only saw a truncated stream.
        match fed {
            Some(Ok(Err(e))) => return Err(e),
            Some(Err(_)) => return Err(io::Error::other("the thread feeding the decoder failed")),
            _ => {}
        }
        if status.success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&said);
        let last: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let tail = last
            .get(last.len().saturating_sub(3)..)
            .unwrap_or_default()
            .join(" / ");
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} {} failed ({status}): {}",
                self.tool.program,
                self.tool.args.join(" "),
                if tail.is_empty() { "no message" } else { &tail }
            ),
        ))
    }
}

impl Read for ToolReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = self.stdout.read(out)?;
        if n == 0 && !out.is_empty() {
            self.done = true;
            self.finish()?;
        }
        Ok(n)
    }
}

impl Drop for ToolReader {
    fn drop(&mut self) {
        if !self.done {
            // Stopped early (a restart of the decode, an error elsewhere): the tool is
            // not needed any more, and its stdin feeder ends on the broken pipe.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const CAT: Tool = Tool {
        program: "cat",
        args: &[],
        package: "coreutils",
    };

    #[test]
    fn a_tool_passes_the_stream_through_and_ends_clean() {
        let data: Vec<u8> = (0..2_000_003u32).map(|i| (i % 251) as u8).collect();
        let mut r = ToolReader::spawn(CAT, Box::new(Cursor::new(data.clone()))).unwrap();
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert!(got == data);
    }

    #[test]
    fn a_failing_tool_is_an_error_with_its_words_not_a_short_stream() {
        const FAILS: Tool = Tool {
            program: "sh",
            args: &["-c", "head -c 10; echo 'broken member at 12' >&2; exit 2"],
            package: "dash",
        };
        let mut r = ToolReader::spawn(FAILS, Box::new(Cursor::new(vec![1u8; 100_000]))).unwrap();
        let mut got = Vec::new();
        let e = r.read_to_end(&mut got).unwrap_err().to_string();
        assert!(
            e.contains("broken member at 12") && e.contains("exit status: 2"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_tool_is_named_with_its_package() {
        const NONE: Tool = Tool {
            program: "ironclone-no-such-decoder",
            args: &[],
            package: "nothing",
        };
        let e = ToolReader::spawn(NONE, Box::new(io::empty()))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("ironclone-no-such-decoder") && e.contains("not installed"),
            "{e}"
        );
    }

    #[test]
    fn an_input_error_is_the_error() {
        struct Gone;
        impl Read for Gone {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("volume .ab missing"))
            }
        }
        let mut r = ToolReader::spawn(CAT, Box::new(Gone)).unwrap();
        let e = r.read_to_end(&mut Vec::new()).unwrap_err().to_string();
        assert!(e.contains("volume .ab missing"), "{e}");
    }
}
