//! Credentials on command lines: the arguments of the tools in [`FLAGS`] and [`POSITIONAL`],
//! read as the programs read them (quoted arguments, joined and attached values, Windows `/x:`
//! options), and the shapes that carry a credential whatever the program (`DOMAIN/user:pw@host`,
//! `ConvertTo-SecureString '…' -AsPlainText`, `PGPASSWORD=…`, a token as a URL's user).
//!
//! A command line may sit anywhere in a text (a Sysmon `CommandLine`, a script block, a shell
//! history line, an analyst's note) and may hold others (`cmd /c "net use … && …"`): every
//! argument that names a known program starts one, and a quoted argument holding spaces is read
//! again as a command line of its own.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::Regex;

use super::tables::{Carries, FLAGS, Flag, POSITIONAL, Slot};
use super::{Entity, NOT_USERS};

/// A value found: its entity, its span and the recognizer's name.
pub(super) type Found = (Entity, usize, usize, &'static str);

/// The command-line recognizers, ready to scan.
pub(super) struct Commands {
    /// Program names, the program-independent flags and the shapes' words: a text holding none
    /// of them holds no command-line credential (most strings of an event), checked in one pass.
    gate: AhoCorasick,
    /// What each of the gate's words opens.
    opens: Vec<Opens>,
    by_tool: HashMap<&'static str, Vec<&'static Flag>>,
    any_tool: Vec<&'static Flag>,
    shapes: Vec<(Regex, &'static [Entity], &'static str)>,
}

/// What a word of the gate, found in a text, says is worth reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opens {
    /// A program's name: its command line, if the name stands as a word or a file name.
    Program,
    /// A flag of any program: the command line.
    Flag,
    /// A word the shapes need: the shapes.
    Shape,
}

/// Extensions a program's file name may carry.
const EXTENSIONS: &[&str] = &[".exe", ".py", ".sh", ".bat", ".cmd", ".ps1", ".com"];

impl Commands {
    pub(super) fn new() -> Result<Commands, String> {
        let mut by_tool: HashMap<&'static str, Vec<&'static Flag>> = HashMap::new();
        let mut any_tool = Vec::new();
        let mut gate_words: Vec<(&str, Opens)> = Vec::new();
        for f in FLAGS {
            for t in f.tools {
                if *t == "*" {
                    any_tool.push(f);
                    gate_words.extend(f.flags.iter().map(|w| (*w, Opens::Flag)));
                } else {
                    by_tool.entry(t).or_default().push(f);
                    gate_words.push((t, Opens::Program));
                }
            }
        }
        for (tools, _, _) in POSITIONAL {
            for t in *tools {
                by_tool.entry(t).or_default();
                gate_words.push((t, Opens::Program));
            }
        }
        // Each shape below needs one of these.
        gate_words.extend(
            [
                "@",
                "securestring",
                "credential",
                "PASSWORD=",
                "PASSWD=",
                "_PWD=",
                "TOKEN=",
                "SECRET=",
                "API_KEY=",
                "APIKEY=",
                "ACCESS_KEY=",
            ]
            .map(|w| (w, Opens::Shape)),
        );
        let gate = AhoCorasickBuilder::new()
            // A DFA: every string of every event passes through it.
            .kind(Some(AhoCorasickKind::DFA))
            .ascii_case_insensitive(true)
            // A program's name inside another word (`sc` in `Description`) opens nothing; no
            // name that stands alone can start inside such a word, so the matches need not
            // overlap.
            .match_kind(MatchKind::LeftmostLongest)
            .build(gate_words.iter().map(|(w, _)| w))
            .map_err(|e| format!("command-line gate: {e}"))?;
        let opens = gate_words.iter().map(|(_, o)| *o).collect();
        use Entity::{Secret, User};
        let shapes = [
            // Impacket and its kin: `DOMAIN/user:password@target`.
            (
                r"(?:^|[\s'\x22])[A-Za-z0-9][A-Za-z0-9_.-]*/([A-Za-z0-9_.$-]+):([^@\s'\x22]+)@[A-Za-z0-9_.-]+",
                &[User, Secret][..],
                "impacket-target",
            ),
            // PowerShell: `ConvertTo-SecureString 'pw' -AsPlainText -Force`.
            (
                r"(?i)ConvertTo-SecureString\s+(?:-String\s+)?(?:\x22([^\x22]+)\x22|'([^']+)')",
                &[Secret, Secret][..],
                "powershell-securestring",
            ),
            // `New-Object System.Net.NetworkCredential('user', 'pw')`, PSCredential alike.
            (
                r#"(?i)(?:NetworkCredential|PSCredential)\s*\(\s*["']([^"'\s]+)["']\s*(?:,\s*["']([^"']+)["'])?"#,
                &[User, Secret][..],
                "powershell-credential",
            ),
            // A token as a URL's user (`https://ghp_…@github.com/…`, `https://oauth2:…@`);
            // a short name there is an account.
            (
                r"(?i)\b(?:https?|git|ssh|ftp|ftps|sftp)://([A-Za-z0-9_-]{20,})@",
                &[Secret][..],
                "url-token",
            ),
            // Environment assignments: `PGPASSWORD=…`, `MYSQL_PWD=…`, `GITHUB_TOKEN=…`.
            (
                r#"\b[A-Z][A-Z0-9_]*(?:PASSWORD|PASSWD|_PWD|TOKEN|SECRET|API_KEY|APIKEY|ACCESS_KEY)=("[^"]+"|'[^']+'|[^\s;&|'"]+)"#,
                &[Secret][..],
                "env-secret",
            ),
        ];
        let shapes = shapes
            .into_iter()
            .map(|(re, entities, name)| {
                Regex::new(&super::ascii_boundaries(re))
                    .map(|r| (r, entities, name))
                    .map_err(|e| format!("{name}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Commands {
            gate,
            opens,
            by_tool,
            any_tool,
            shapes,
        })
    }

    /// Every credential in `text`'s command lines, `text` being one line (a command line ends
    /// at a line break, as in every shell); returns whether the words of the shapes occur in it,
    /// for [`Commands::shapes`] to read the whole text.
    pub(super) fn find_in_line(&self, line: &str, out: &mut Vec<Found>) -> bool {
        let (mut commands, mut shapes) = (false, false);
        for m in self.gate.find_iter(line) {
            match self.opens[m.pattern().as_usize()] {
                Opens::Program => commands |= stands_alone(line, m.start(), m.end()),
                Opens::Flag => commands = true,
                Opens::Shape => shapes = true,
            }
            if commands && shapes {
                break;
            }
        }
        if commands {
            self.command_line(line, 0, 0, out);
        }
        shapes
    }

    /// The credentials the shapes carry in `text` (the whole text: a shape may continue on the
    /// next line), where [`Commands::find_in_line`] found their words in one of its lines.
    pub(super) fn shapes(&self, text: &str, out: &mut Vec<Found>) {
        for (re, entities, name) in &self.shapes {
            for caps in re.captures_iter(text) {
                let groups = caps.iter().skip(1).flatten();
                for (m, &entity) in groups.zip(entities.iter().cycle()) {
                    if entity == Entity::User && !is_account(m.as_str()) {
                        continue;
                    }
                    let (start, end) = unquoted(text, m.start(), m.end());
                    if start < end && !is_reference(&text[start..end]) {
                        out.push((entity, start, end, name));
                    }
                }
            }
        }
    }

    /// Reads `text[..]` (at `base` in the scanned text) as one or more command lines.
    fn command_line(&self, text: &str, base: usize, depth: usize, out: &mut Vec<Found>) {
        let args = split(text);
        let mut tool: Option<&str> = None;
        let mut subcommand: Option<String> = None;
        let mut positional: Option<(&[Slot], usize)> = None;
        let mut consumed = vec![false; args.len()];
        let mut i = 0;
        while i < args.len() {
            let (start, end, separator_after) = args[i];
            let word = &text[start..end];
            let (ws, we) = unquoted(text, start, end);
            let bare = &text[ws..we];
            if let Some(name) = self.program(bare) {
                tool = Some(name);
                subcommand = None;
                positional = None;
            } else {
                // Without a known program, only the program-independent flags apply.
                let t = tool.unwrap_or("");
                let sub = subcommand.as_deref();
                if tool.is_some() && sub.is_none() {
                    let s = bare.to_ascii_lowercase();
                    positional = POSITIONAL
                        .iter()
                        .find(|(tools, name, _)| tools.contains(&t) && *name == s)
                        .map(|(_, _, slots)| (*slots, 0));
                    subcommand = Some(s);
                    if positional.is_some() {
                        i += 1;
                        continue;
                    }
                }
                let flags = self.by_tool.get(t).into_iter().flatten().chain(&self.any_tool);
                let sub = subcommand.as_deref();
                if let Some((f, vs, ve, took_next)) = match_flag(flags, sub, text, ws, we, args.get(i + 1)) {
                    emit(f.carries, text, vs, ve, base, out);
                    if took_next {
                        consumed[i + 1] = true;
                        i += 1;
                    }
                    consumed[i] = true;
                } else if let Some((slots, at)) = positional.as_mut()
                    && !is_option(t, word)
                {
                    place(slots, at, text, ws, we, base, out);
                }
            }
            if separator_after {
                tool = None;
                subcommand = None;
                positional = None;
            }
            i += 1;
        }
        // A quoted argument holding spaces may be a command line of its own (`cmd /c "…"`).
        if depth < 4 {
            for (k, &(start, end, _)) in args.iter().enumerate() {
                let (ws, we) = unquoted(text, start, end);
                if !consumed[k] && (ws, we) != (start, end) && text[ws..we].contains(' ') {
                    self.command_line(&text[ws..we], base + ws, depth + 1, out);
                }
            }
        }
    }

    /// The program an argument names, if it is one the tables know.
    fn program(&self, arg: &str) -> Option<&'static str> {
        let name = arg.rsplit(['\\', '/']).next().unwrap_or(arg);
        if name.is_empty() || name.len() > 32 {
            return None;
        }
        let lower = name.to_ascii_lowercase();
        let stem = EXTENSIONS.iter().find_map(|e| lower.strip_suffix(e)).unwrap_or(&lower);
        self.by_tool
            .get_key_value(stem)
            .or_else(|| self.by_tool.get_key_value(lower.as_str()))
            .map(|(k, _)| *k)
    }
}

/// Whether the program name at `text[start..end]` stands as a word or as a file name
/// (`net`, `"net.exe"`, `C:\\Windows\\System32\\net.exe`, `(sc`), not inside another word.
fn stands_alone(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].bytes().next_back();
    let after = text[end..].bytes().next();
    before.is_none_or(|b| b" \t\r\n\"'`\\/(=;&|{".contains(&b))
        && after.is_none_or(|b| b" \t\r\n\"'`.;&|)}".contains(&b))
}

/// The flag an argument is, and its value's span (`took_next`: the value is the next argument).
fn match_flag<'f>(
    flags: impl Iterator<Item = &'f &'static Flag>,
    subcommand: Option<&str>,
    text: &str,
    start: usize,
    end: usize,
    next: Option<&(usize, usize, bool)>,
) -> Option<(&'static Flag, usize, usize, bool)> {
    let arg = &text[start..end];
    for f in flags {
        if f.subcommand.is_some_and(|s| Some(s) != subcommand) {
            continue;
        }
        for spelling in f.flags {
            let windows = spelling.starts_with('/');
            let same = |a: &str, b: &str| if windows { a.eq_ignore_ascii_case(b) } else { a == b };
            if same(arg, spelling) {
                if f.next
                    && let Some(&(ns, ne, _)) = next
                {
                    let (vs, ve) = unquoted(text, ns, ne);
                    return Some((f, vs, ve, true));
                }
                continue;
            }
            let Some(head) = arg.get(..spelling.len()) else {
                continue;
            };
            if !same(head, spelling) {
                continue;
            }
            let rest = &arg[spelling.len()..];
            if spelling.ends_with('=') && !rest.is_empty() {
                let (vs, ve) = unquoted(text, start + spelling.len(), end);
                return Some((f, vs, ve, false));
            }
            if rest.len() > 1 && rest.starts_with(['=', ':']) {
                let (vs, ve) = unquoted(text, start + spelling.len() + 1, end);
                return Some((f, vs, ve, false));
            }
            if f.attached && spelling.len() == 2 && !rest.is_empty() {
                let (vs, ve) = unquoted(text, start + 2, end);
                return Some((f, vs, ve, false));
            }
        }
    }
    None
}

/// Whether an argument of `tool` is an option: Windows' own tools take `/x` only (a password
/// may start with `-`), the others `-x` too.
fn is_option(tool: &str, arg: &str) -> bool {
    arg.starts_with('/') || (!matches!(tool, "net" | "net1") && arg.starts_with('-'))
}

/// Puts a positional argument in its slot.
fn place(slots: &[Slot], at: &mut usize, text: &str, start: usize, end: usize, base: usize, out: &mut Vec<Found>) {
    let value = &text[start..end];
    while let Some(slot) = slots.get(*at) {
        *at += 1;
        match slot {
            Slot::Device if value == "*" || (value.len() == 2 && value.ends_with(':')) => return,
            Slot::Device => continue,
            Slot::Share if value.starts_with("\\\\") => return,
            Slot::Share => {
                // Not the form the table describes: read nothing more of it.
                *at = slots.len();
                return;
            }
            Slot::Other => return,
            Slot::Account => {
                emit(Carries::Account, text, start, end, base, out);
                return;
            }
            Slot::Secret => {
                emit(Carries::Secret, text, start, end, base, out);
                return;
            }
        }
    }
}

/// Records the value `text[start..end]` of an argument that carries `carries`.
fn emit(carries: Carries, text: &str, start: usize, end: usize, base: usize, out: &mut Vec<Found>) {
    let value = &text[start..end];
    if value.is_empty() || value == "*" || is_reference(value) {
        return;
    }
    match carries {
        Carries::Secret => out.push((Entity::Secret, base + start, base + end, "command-line-secret")),
        Carries::Account => account(text, start, end, base, out),
        Carries::AccountPassword(sep) => match value.find(sep) {
            Some(at) => {
                account(text, start, start + at, base, out);
                if start + at + 1 < end {
                    out.push((Entity::Secret, base + start + at + 1, base + end, "command-line-secret"));
                }
            }
            None => account(text, start, end, base, out),
        },
        Carries::OpensslPass => {
            if value.starts_with("pass:") && value.len() > 5 {
                out.push((Entity::Secret, base + start + 5, base + end, "command-line-secret"));
            }
        }
    }
}

/// Records the account of `DOMAIN\name`, `DOMAIN/name` or `name@domain` written at `start..end`.
fn account(text: &str, start: usize, end: usize, base: usize, out: &mut Vec<Found>) {
    let value = &text[start..end];
    let from = value.rfind(['\\', '/']).map_or(0, |i| i + 1);
    let to = value[from..].find('@').map_or(value.len(), |i| from + i);
    let name = &value[from..to];
    if is_account(name) {
        out.push((
            Entity::User,
            base + start + from,
            base + start + to,
            "command-line-account",
        ));
    }
}

/// Whether a value can be an account (not a placeholder, a built-in principal or a variable).
fn is_account(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 104
        && !is_reference(name)
        && !NOT_USERS.contains(&name.to_ascii_lowercase().as_str())
        && !name.contains(char::is_whitespace)
}

/// Whether a value only refers to one held elsewhere: a variable (`$pw`, `%PW%`, `${PW}`), a
/// prompt (`*`) or standard input (`-`).
fn is_reference(value: &str) -> bool {
    value.starts_with('$') || (value.len() > 2 && value.starts_with('%') && value.ends_with('%')) || value == "-"
}

/// The span inside the quotes that enclose `text[start..end]` whole, if any.
fn unquoted(text: &str, start: usize, end: usize) -> (usize, usize) {
    let s = &text.as_bytes()[start..end];
    if s.len() >= 2 && (s[0] == b'"' || s[0] == b'\'') && s[s.len() - 1] == s[0] {
        (start + 1, end - 1)
    } else {
        (start, end)
    }
}

/// Splits a command line into its arguments: `(start, end, ends a command)`. Quotes group
/// (a quote opens only at an argument's start or after `=` / `:`, and only if it closes, so
/// that `O'Brien` stays a word); an unquoted `;`, `|` or `&` ending an argument ends a command.
fn split(text: &str) -> Vec<(usize, usize, bool)> {
    let b = text.as_bytes();
    let mut args = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            let c = b[i];
            let opens = (c == b'"' || c == b'\'') && (i == start || matches!(b[i - 1], b'=' | b':'));
            if opens && let Some(close) = memchr::memchr(c, &b[i + 1..]) {
                i += close + 2;
                continue;
            }
            i += 1;
        }
        // A shell's line continuation (`\`, `` ` ``, `^` before a line break) is no argument.
        let continued = &b[i..];
        if i - start == 1
            && matches!(b[start], b'\\' | b'`' | b'^')
            && (continued.starts_with(b"\n") || continued.starts_with(b"\r\n"))
        {
            continue;
        }
        let mut end = i;
        let mut separator = false;
        while end > start && matches!(b[end - 1], b';' | b'|' | b'&') {
            end -= 1;
            separator = true;
        }
        if end > start {
            args.push((start, end, separator));
        } else if let Some(last) = args.last_mut() {
            last.2 = true;
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(Entity, String)> {
        let c = Commands::new().unwrap_or_else(|e| panic!("{e}"));
        let mut out = Vec::new();
        if c.find_in_line(text, &mut out) {
            c.shapes(text, &mut out);
        }
        out.sort_by_key(|f| f.1);
        out.into_iter().map(|(e, s, t, _)| (e, text[s..t].to_owned())).collect()
    }

    #[test]
    fn arguments_split_as_shells_read_them() {
        let t = r#"cmd /c "net use x" --p="a b" O'Brien x;y a&&"#;
        let args: Vec<&str> = split(t).into_iter().map(|(s, e, _)| &t[s..e]).collect();
        assert_eq!(
            args,
            ["cmd", "/c", "\"net use x\"", "--p=\"a b\"", "O'Brien", "x;y", "a"]
        );
        assert!(split(t).last().is_some_and(|a| a.2), "a trailing && ends a command");
        let continued = "curl \\\n -u a:b `\r\n x ^\n y ^z \\";
        let args: Vec<&str> = split(continued).into_iter().map(|(s, e, _)| &continued[s..e]).collect();
        assert_eq!(
            args,
            ["curl", "-u", "a:b", "x", "y", "^z", "\\"],
            "continuations are no arguments"
        );
    }

    #[test]
    fn tools_give_up_their_credentials() {
        use Entity::{Secret, User};
        let s = |v: &str| (Secret, v.to_owned());
        let u = |v: &str| (User, v.to_owned());
        for (line, want) in [
            ("curl -u anna:S3cret! https://x", vec![u("anna"), s("S3cret!")]),
            ("curl --user 'bob:p w' https://x", vec![u("bob"), s("p w")]),
            (
                r"net use \\srv\share Winter2024 /user:CORP\pnowak",
                vec![s("Winter2024"), u("pnowak")],
            ),
            (r"net use Z: \\srv\share * /user:CORP\pnowak", vec![u("pnowak")]),
            ("mysql -u root -pHunter2 db", vec![u("root"), s("Hunter2")]),
            ("mysql -u app -p db", vec![u("app")]),
            ("sshpass -p 'x y' ssh admin@10.0.0.1", vec![s("x y")]),
            ("smbclient //srv/c -U CORP/anna%pw1", vec![u("anna"), s("pw1")]),
            (
                "xfreerdp /v:10.0.0.5 /u:maria /p:Qwerty12",
                vec![u("maria"), s("Qwerty12")],
            ),
            ("ldapsearch -x -D cn=admin -w s3cr3t -b dc=x", vec![s("s3cr3t")]),
            ("docker login -u ci -p tok123 registry", vec![u("ci"), s("tok123")]),
            ("docker run -p 80:80 nginx", vec![]),
            ("openssl enc -aes256 -pass pass:abc -in f", vec![s("abc")]),
            ("openssl enc -aes256 -pass env:PW -in f", vec![]),
            (
                "PsExec.exe \\\\ws01 -u CORP\\adm -p P@ss cmd",
                vec![u("adm"), s("P@ss")],
            ),
            ("schtasks /create /ru CORP\\svc /rp Pw1 /tn x", vec![u("svc"), s("Pw1")]),
            ("net user jdoe Secret99 /add", vec![u("jdoe"), s("Secret99")]),
            ("7z a -pArch1ve x.7z dir", vec![s("Arch1ve")]),
            ("secretsdump.py CORP/anna:Pw9@10.0.0.2", vec![u("anna"), s("Pw9")]),
            ("$p = ConvertTo-SecureString 'Pw!' -AsPlainText -Force", vec![s("Pw!")]),
            (
                "git clone https://ghp_abcdefghijklmnopqrstuvwxyz0123@github.com/x",
                vec![s("ghp_abcdefghijklmnopqrstuvwxyz0123")],
            ),
            ("PGPASSWORD=pw psql -U alice -h db", vec![s("pw"), u("alice")]),
            ("mysql -u root -p$DB_PASSWORD", vec![u("root")]),
            (
                r#"cmd.exe /c "net use \\fs\x Pw /user:bob && dir""#,
                vec![s("Pw"), u("bob")],
            ),
        ] {
            assert_eq!(found(line), want, "{line}");
        }
    }
}
