//! The shell subset `fast_execute_script` runs on a sandbox host: a flat list of simple
//! commands, one per line, over the host's directory (see the README's "Scripts"). It is
//! enough for the checksum script `plan` sends (`plan_bkjob::script`) and small probes, and
//! nothing more: no variables, no pipes, no redirections, no globs, no command substitution.
//! Whatever is outside the subset stops the script with exit code 127 and a log line that
//! names it (`jobsim: unsupported command 'xyz'`), so a script is never half-understood.
//!
//! Every path goes through the host's [`HostFs`] handle (cap-std): `..` stops at the host's
//! root and a symlink that leads out of it is refused, as for transfers. Relative paths are
//! taken from the host's `/`. Output (stdout and stderr together, as GSE collects them) is
//! bounded by [`MAX_OUTPUT_BYTES`].

use std::io::{self, Read};
use std::path::PathBuf;

use cap_std::fs::{Dir, Metadata};
use sha2::{Digest, Sha256};

use crate::hostfs::{HostFs, detail, relative};

/// Most bytes of output kept per host; past it, one line says the rest was dropped.
pub(crate) const MAX_OUTPUT_BYTES: usize = 256 * 1024;

/// Exit code of a command or syntax outside the subset (a shell's "command not found").
pub(crate) const UNSUPPORTED_EXIT: i32 = 127;

/// What running a script on one host gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ran {
    pub(crate) exit_code: i32,
    pub(crate) output: String,
}

/// Runs `script` on the host, to its end, an `exit`, or the first unsupported line.
pub(crate) fn run(script: &str, host: &HostFs) -> Ran {
    let mut shell = Shell {
        dir: host.dir(),
        out: Output::default(),
        status: 0,
    };
    let exit_code = shell.run_lines(script);
    Ran {
        exit_code,
        output: shell.out.text,
    }
}

/// How a line ended the script, if it did.
enum Flow {
    Next,
    Exit(i32),
}

struct Shell<'a> {
    dir: &'a Dir,
    out: Output,
    /// The last command's exit status (`$?`).
    status: i32,
}

impl Shell<'_> {
    fn run_lines(&mut self, script: &str) -> i32 {
        for (number, line) in script.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words = match words(line) {
                Ok(words) => words,
                Err(why) => {
                    self.out
                        .line(&format!("jobsim: line {}: {why}", number + 1));
                    return UNSUPPORTED_EXIT;
                }
            };
            if words.is_empty() {
                continue;
            }
            match self.command(&words) {
                Flow::Next => {}
                Flow::Exit(code) => return code,
            }
        }
        self.status
    }

    fn command(&mut self, words: &[String]) -> Flow {
        let (name, args) = match words.split_first() {
            Some((name, args)) => (name.as_str(), args),
            None => return Flow::Next,
        };
        self.status = match name {
            "echo" => self.echo(args),
            "printf" => self.printf(args),
            "true" | ":" => 0,
            "false" => 1,
            "exit" => return self.exit(args),
            "test" => self.test(args),
            "[" => match args.split_last() {
                Some((last, inner)) if last == "]" => self.test(inner),
                _ => self.fail("[: missing ']'", 2),
            },
            "sha256sum" => self.sha256sum(args),
            "stat" => self.stat(args),
            "wc" => self.wc(args),
            other => {
                self.out
                    .line(&format!("jobsim: unsupported command '{other}'"));
                return Flow::Exit(UNSUPPORTED_EXIT);
            }
        };
        Flow::Next
    }

    /// Writes `message` and gives `code`.
    fn fail(&mut self, message: &str, code: i32) -> i32 {
        self.out.line(message);
        code
    }

    fn echo(&mut self, args: &[String]) -> i32 {
        let (newline, args) = match args.split_first() {
            Some((flag, rest)) if flag == "-n" => (false, rest),
            _ => (true, args),
        };
        self.out.push(&args.join(" "));
        if newline {
            self.out.push("\n");
        }
        0
    }

    /// `printf FORMAT [ARG...]`: `%s`, `%d`, `%%` and the escapes `\n`, `\t`, `\\`; the
    /// format is reused while arguments remain, as coreutils does.
    fn printf(&mut self, args: &[String]) -> i32 {
        let Some((format, mut rest)) = args.split_first() else {
            return self.fail("printf: missing operand", 1);
        };
        loop {
            let before = rest.len();
            match render(format, &mut rest) {
                Ok(text) => self.out.push(&text),
                Err(why) => return self.fail(&format!("printf: {why}"), 1),
            }
            if rest.is_empty() || rest.len() == before {
                return 0;
            }
        }
    }

    fn exit(&mut self, args: &[String]) -> Flow {
        match args.first() {
            None => Flow::Exit(self.status),
            Some(code) => match code.parse::<i64>() {
                // A shell keeps the low 8 bits.
                Ok(n) => Flow::Exit(i32::try_from(n.rem_euclid(256)).unwrap_or(0)),
                Err(_) => {
                    Flow::Exit(self.fail(&format!("exit: {code}: numeric argument required"), 2))
                }
            },
        }
    }

    /// `test` / `[ ]`: `-e -f -d -s -r FILE`, `-n -z STRING`, `A = B`, `A != B`, one string,
    /// each maybe after `!`. Anything else is a syntax error (2).
    fn test(&mut self, args: &[String]) -> i32 {
        let (negate, args) = match args.split_first() {
            Some((bang, rest)) if bang == "!" => (true, rest),
            _ => (false, args),
        };
        let truth = match args {
            [] => Some(false),
            [one] => Some(!one.is_empty()),
            [op, operand] => self.unary(op, operand),
            [a, op, b] if op == "=" || op == "==" => Some(a == b),
            [a, op, b] if op == "!=" => Some(a != b),
            _ => None,
        };
        match truth {
            Some(t) => i32::from(t == negate),
            None => self.fail(
                &format!("test: unsupported expression '{}'", args.join(" ")),
                2,
            ),
        }
    }

    fn unary(&self, op: &str, operand: &str) -> Option<bool> {
        let meta = || self.dir.metadata(host_path(operand)).ok();
        Some(match op {
            "-n" => !operand.is_empty(),
            "-z" => operand.is_empty(),
            "-e" | "-r" => meta().is_some(),
            "-f" => meta().is_some_and(|m| m.is_file()),
            "-d" => meta().is_some_and(|m| m.is_dir()),
            "-s" => meta().is_some_and(|m| m.len() > 0),
            _ => return None,
        })
    }

    /// `sha256sum [--] FILE...`, printing GNU's `<hex>  <name>` (escaped as GNU does for a
    /// name with a backslash or a line break).
    fn sha256sum(&mut self, args: &[String]) -> i32 {
        let files = match operands("sha256sum", args, &mut self.out) {
            Some(files) => files,
            None => return 1,
        };
        let mut status = 0;
        for name in files {
            match hash_file(self.dir, name) {
                Ok(digest) if name.contains(['\\', '\n']) => {
                    let escaped = name.replace('\\', "\\\\").replace('\n', "\\n");
                    self.out.line(&format!("\\{digest}  {escaped}"));
                }
                Ok(digest) => self.out.line(&format!("{digest}  {name}")),
                Err(e) => {
                    status = self.fail(&format!("sha256sum: {name}: {}", message(&e)), 1);
                }
            }
        }
        status
    }

    /// `stat [-L] -c FORMAT [--] FILE...` (also `--format=FORMAT`): `%s` size, `%n` name,
    /// `%F` file type, `%%`. Without `-L` a symlink is described itself, as `stat` does.
    fn stat(&mut self, args: &[String]) -> i32 {
        let mut follow = false;
        let mut format = None;
        let mut rest = args;
        while let Some((arg, tail)) = rest.split_first() {
            match arg.as_str() {
                "-L" => follow = true,
                "-c" => match tail.split_first() {
                    Some((f, tail2)) => {
                        format = Some(f.clone());
                        rest = tail2;
                        continue;
                    }
                    None => return self.fail("stat: option requires an argument -- 'c'", 1),
                },
                a if a.starts_with("--format=") => {
                    format = a.strip_prefix("--format=").map(str::to_owned);
                }
                _ => break,
            }
            rest = tail;
        }
        let Some(format) = format else {
            return self.fail("jobsim: unsupported option: stat needs -c FORMAT", 1);
        };
        let Some(files) = operands("stat", rest, &mut self.out) else {
            return 1;
        };
        let mut status = 0;
        for name in files {
            let path = host_path(name);
            let meta = if follow {
                self.dir.metadata(&path)
            } else {
                self.dir.symlink_metadata(&path)
            };
            match meta.map(|m| stat_format(&format, name, &m)) {
                Ok(Ok(text)) => self.out.line(&text),
                Ok(Err(why)) => return self.fail(&format!("stat: {why}"), 1),
                Err(e) => {
                    status = self.fail(&format!("stat: cannot statx '{name}': {}", message(&e)), 1);
                }
            }
        }
        status
    }

    /// `wc -c [--] FILE...`: `<bytes> <name>`, and a `total` line for more than one file.
    fn wc(&mut self, args: &[String]) -> i32 {
        let rest = match args.split_first() {
            Some((flag, rest)) if flag == "-c" => rest,
            _ => return self.fail("jobsim: unsupported option: wc needs -c", 1),
        };
        let Some(files) = operands("wc", rest, &mut self.out) else {
            return 1;
        };
        let mut status = 0;
        let mut total = 0u64;
        for name in &files {
            match self.dir.metadata(host_path(name)) {
                Ok(m) if m.is_dir() => {
                    status = self.fail(&format!("wc: {name}: Is a directory"), 1)
                }
                Ok(m) => {
                    total += m.len();
                    self.out.line(&format!("{} {name}", m.len()));
                }
                Err(e) => status = self.fail(&format!("wc: {name}: {}", message(&e)), 1),
            }
        }
        if files.len() > 1 {
            self.out.line(&format!("{total} total"));
        }
        status
    }
}

/// A command's file operands: everything after an optional `--`; an option before them is
/// outside the subset. `None` (after saying why) when there is nothing to work on.
fn operands<'a>(command: &str, args: &'a [String], out: &mut Output) -> Option<Vec<&'a str>> {
    let args = match args.split_first() {
        Some((dashes, rest)) if dashes == "--" => rest,
        _ => {
            if let Some(option) = args.iter().find(|a| a.starts_with('-') && a.len() > 1) {
                out.line(&format!("jobsim: unsupported option: {command} {option}"));
                return None;
            }
            args
        }
    };
    if args.is_empty() {
        out.line(&format!("{command}: missing operand"));
        return None;
    }
    Some(args.iter().map(String::as_str).collect())
}

/// A script's path on the host: absolute, or from the host's `/`.
fn host_path(name: &str) -> PathBuf {
    if name.starts_with('/') {
        relative(name)
    } else {
        relative(&format!("/{name}"))
    }
}

/// The text of an I/O error as the tools print it.
fn message(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "No such file or directory".into(),
        _ if e.raw_os_error() == Some(21) => "Is a directory".into(),
        _ => detail(e),
    }
}

fn hash_file(dir: &Dir, name: &str) -> io::Result<String> {
    let path = host_path(name);
    if dir.metadata(&path)?.is_dir() {
        return Err(io::Error::from_raw_os_error(21));
    }
    let mut file = dir.open(&path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn stat_format(format: &str, name: &str, meta: &Metadata) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => out.push_str(&meta.len().to_string()),
            Some('n') => out.push_str(name),
            Some('F') => out.push_str(file_type(meta)),
            Some('%') => out.push('%'),
            Some(other) => return Err(format!("jobsim: unsupported format '%{other}'")),
            None => out.push('%'),
        }
    }
    Ok(out)
}

fn file_type(meta: &Metadata) -> &'static str {
    if meta.is_symlink() {
        "symbolic link"
    } else if meta.is_dir() {
        "directory"
    } else if meta.len() == 0 {
        "regular empty file"
    } else {
        "regular file"
    }
}

/// One pass of a `printf` format, taking the arguments it uses from `args` (a missing one is
/// empty, or 0 for `%d`).
fn render(format: &str, args: &mut &[String]) -> Result<String, String> {
    let mut next = || -> String {
        match args.split_first() {
            Some((first, rest)) => {
                *args = rest;
                first.clone()
            }
            None => String::new(),
        }
    };
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('\\') | None => out.push('\\'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
            },
            '%' => match chars.next() {
                Some('s') => out.push_str(&next()),
                Some('d') => {
                    let arg = next();
                    let n: i64 = if arg.is_empty() {
                        0
                    } else {
                        arg.parse().map_err(|_| format!("{arg}: invalid number"))?
                    };
                    out.push_str(&n.to_string());
                }
                Some('%') => out.push('%'),
                Some(other) => return Err(format!("%{other}: invalid conversion")),
                None => return Err("%: invalid conversion".into()),
            },
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Splits a line into words by the shell's quoting rules, after refusing what the subset
/// does not do: an unquoted `| & ; < > ( ) ` * ? ~ {}`, or a `$` outside single quotes.
fn words(line: &str) -> Result<Vec<String>, String> {
    if let Some(c) = unsupported_syntax(line) {
        return Err(format!("jobsim: unsupported shell syntax '{c}'"));
    }
    shlex::split(line).ok_or_else(|| "jobsim: unbalanced quotes".to_owned())
}

/// The first character that would make a real shell do more than run one simple command
/// with literal words.
fn unsupported_syntax(line: &str) -> Option<char> {
    let mut single = false;
    let mut double = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' if !double => single = !single,
            _ if single => {}
            '\\' => {
                chars.next();
            }
            '"' => double = !double,
            '$' | '`' => return Some(c),
            _ if double => {}
            '|' | '&' | ';' | '<' | '>' | '(' | ')' | '*' | '?' | '~' | '{' | '}' => {
                return Some(c);
            }
            _ => {}
        }
    }
    None
}

/// Output bounded by [`MAX_OUTPUT_BYTES`].
#[derive(Default)]
struct Output {
    text: String,
    truncated: bool,
}

impl Output {
    fn push(&mut self, s: &str) {
        if self.truncated {
            return;
        }
        if self.text.len() + s.len() > MAX_OUTPUT_BYTES {
            let mut cut = MAX_OUTPUT_BYTES.saturating_sub(self.text.len());
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            self.text.push_str(&s[..cut]);
            self.text.push_str(&format!(
                "\njobsim: output truncated at {MAX_OUTPUT_BYTES} bytes\n"
            ));
            self.truncated = true;
            return;
        }
        self.text.push_str(s);
    }

    fn line(&mut self, s: &str) {
        self.push(s);
        self.push("\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC_SHA: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn host() -> (tempfile::TempDir, HostFs) {
        let tmp = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(tmp.path().join("host/data")).expect("mkdir");
        std::fs::write(tmp.path().join("host/data/abc"), "abc").expect("write");
        std::fs::write(tmp.path().join("outside"), "secret").expect("write");
        let fs = HostFs::open(&tmp.path().join("host")).expect("open");
        (tmp, fs)
    }

    #[test]
    fn the_checksum_script_runs() {
        let (_tmp, fs) = host();
        let script =
            plan_bkjob::script::checksum_script(&["/data/abc", "/data/none"]).expect("script");
        let ran = run(&script, &fs);
        assert_eq!(ran.exit_code, 0, "{}", ran.output);
        let facts = plan_bkjob::script::parse_checksum_output(&ran.output).expect("ours");
        assert_eq!(facts["/data/abc"].size, Some(3));
        assert_eq!(facts["/data/abc"].sha256.as_deref(), Some(ABC_SHA));
        assert!(!facts.contains_key("/data/none"));
        assert!(
            ran.output
                .contains("sha256sum: /data/none: No such file or directory")
        );
    }

    #[test]
    fn commands_of_the_subset() {
        let (_tmp, fs) = host();
        let ran = run(
            "#!/bin/sh\n# probe\necho -n 'a  b'\necho \" c\"\nprintf '%s=%d\\n' x 1 y 2\n\
             test -f /data/abc\n[ -d /data ]\nwc -c /data/abc\nstat -c '%F %s' data/abc\nfalse\n",
            &fs,
        );
        assert_eq!(
            ran.output,
            "a  b c\nx=1\ny=2\n3 /data/abc\nregular file 3\n"
        );
        assert_eq!(ran.exit_code, 1);
        assert_eq!(run("test -f /data/none\n", &fs).exit_code, 1);
        assert_eq!(run("[ ! -e /data/none ]\n", &fs).exit_code, 0);
        assert_eq!(run("exit 3\necho never\n", &fs).output, "");
        assert_eq!(run("exit 300\n", &fs).exit_code, 44);
    }

    #[test]
    fn anything_else_stops_the_script() {
        let (_tmp, fs) = host();
        for (script, said) in [
            ("rm -rf /\n", "jobsim: unsupported command 'rm'"),
            ("echo $HOME\n", "unsupported shell syntax '$'"),
            ("sha256sum /data/* \n", "unsupported shell syntax '*'"),
            ("echo a | cat\n", "unsupported shell syntax '|'"),
            ("echo a > /data/x\n", "unsupported shell syntax '>'"),
            ("echo 'open\n", "unbalanced quotes"),
        ] {
            let ran = run(&format!("echo before\n{script}echo after\n"), &fs);
            assert_eq!(ran.exit_code, UNSUPPORTED_EXIT, "{script}");
            assert!(ran.output.starts_with("before\n"), "{script}");
            assert!(ran.output.contains(said), "{script}: {}", ran.output);
            assert!(!ran.output.contains("after"), "{script}");
        }
        // Quoted, the same characters are plain text.
        assert_eq!(run("echo '$HOME | * > ;'\n", &fs).output, "$HOME | * > ;\n");
    }

    #[test]
    fn paths_stay_on_the_host() {
        let (tmp, fs) = host();
        let ran = run("sha256sum /../../outside\n", &fs);
        assert_eq!(ran.exit_code, 1);
        assert!(
            ran.output.contains("No such file or directory"),
            "{}",
            ran.output
        );
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(tmp.path().join("outside"), tmp.path().join("host/link"))
                .expect("symlink");
            let ran = run("sha256sum /link\n", &fs);
            assert_eq!(ran.exit_code, 1);
            assert!(
                ran.output.contains("path leads outside the host"),
                "{}",
                ran.output
            );
            assert!(!ran.output.contains(ABC_SHA));
        }
    }

    proptest::proptest! {
        /// Whatever the script, the shell answers with an exit code and bounded output.
        #[test]
        fn any_script_ends_without_panicking(script in "(\\PC|[ \n'\"\\\\$|;#%-])*") {
            let (_tmp, fs) = host();
            let ran = run(&script, &fs);
            proptest::prop_assert!(ran.output.len() <= MAX_OUTPUT_BYTES + 100);
        }

        /// The same for lines made of the subset's own commands with odd arguments.
        #[test]
        fn subset_commands_with_odd_arguments(
            command in "(echo|printf|test|\\[|sha256sum|stat|wc|exit)",
            args in proptest::collection::vec("[-%a-z/.\\\\ '\"]{0,12}", 0..5),
        ) {
            let (_tmp, fs) = host();
            let line = format!("{command} {}\n", args.join(" "));
            let _ = run(&line, &fs);
        }
    }

    #[test]
    fn output_is_bounded() {
        let (_tmp, fs) = host();
        let line = format!("echo '{}'\n", "x".repeat(1000));
        let ran = run(&line.repeat(400), &fs);
        assert!(ran.output.len() < MAX_OUTPUT_BYTES + 100);
        assert!(
            ran.output
                .ends_with(&format!("truncated at {MAX_OUTPUT_BYTES} bytes\n"))
        );
        assert_eq!(ran.exit_code, 0);
    }
}
