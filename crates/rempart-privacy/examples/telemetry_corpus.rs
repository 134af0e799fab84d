//! A labelled corpus of security telemetry generated from templates with random values, in
//! the formats a SOC collects and in the EU's main languages, and the recognizers' recall and
//! precision on it per type. The values are drawn anew for each seed (names from the
//! gazetteer's tables, accounts and hosts in the shapes institutions give them, passwords,
//! checksum-valid IBANs and cards, identifiers whose checksum fails but whose label names them),
//! so that no recognizer can be tuned to particular values.
//!
//! ```text
//! cargo run -p rempart-privacy --example telemetry_corpus -- [--seed N] [--lines N] [--write FILE] [--misses]
//! ```
//!
//! `--write` writes the corpus as JSON lines (`{"format", "text", "expect": [[type, value]…]}`).

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an evaluation program"
)]

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rempart_privacy::recognize::{RecognizerConfig, Recognizers};
use rempart_privacy::redact::{Domain, Redactor};

/// One generated line: its format, its text, and what must be found in it.
#[derive(Debug, Clone)]
pub struct Case {
    pub format: &'static str,
    pub text: String,
    pub expect: Vec<(&'static str, String)>,
}

/// Templates per format. `{slot}` is filled with a random value; personal slots are labelled
/// with their type, the others (`{pid}`, `{port}`, `{n}`, `{time}`…) are not.
const TEMPLATES: &[(&str, &[&str])] = &[
    (
        "syslog-sshd",
        &[
            "{mon} {day} {time} {host} sshd[{pid}]: Accepted password for {user} from {ip} port {port} ssh2",
            "{mon} {day} {time} {host} sshd[{pid}]: Failed password for invalid user {user} from {ip} port {port} ssh2",
        ],
    ),
    (
        "syslog-sudo",
        &[
            "{mon} {day} {time} {host} sudo:    {user} : TTY=pts/{n} ; PWD=/tmp ; USER={user2} ; COMMAND=/usr/bin/systemctl restart nginx",
        ],
    ),
    (
        "rfc5424",
        &["<134>1 {iso} {host} webapp {pid} - - login ok for user={user} from {ip}"],
    ),
    (
        "windows-4624-xml",
        &[
            "<Event><System><EventID>4624</EventID><Computer>{fqdn}</Computer></System><EventData><Data Name=\"TargetUserName\">{user}</Data><Data Name=\"WorkstationName\">{host}</Data><Data Name=\"IpAddress\">{ip}</Data></EventData></Event>",
        ],
    ),
    (
        "windows-4625-message",
        &[
            "An account failed to log on.\n\nAccount For Which Logon Failed:\n\tSecurity ID:\t\tS-1-0-0\n\tAccount Name:\t\t{user}\n\tAccount Domain:\t\tCORP\n\nNetwork Information:\n\tWorkstation Name:\t{host}\n\tSource Network Address:\t{ip}",
        ],
    ),
    (
        "sysmon-cmdline",
        &[
            "Process Create: CommandLine: curl -u {user}:{secret} https://intranet/api",
            "Process Create: CommandLine: net use \\\\{host}\\share {secret} /user:CORP\\{user}",
            "Process Create: CommandLine: PsExec.exe \\\\{host} -u CORP\\{user} -p {secret} cmd.exe",
            "Process Create: CommandLine: schtasks /create /tn upd /tr c:\\x.exe /ru CORP\\{user} /rp {secret}",
        ],
    ),
    (
        "bash-history",
        &[
            "mysql -u {user} -p{secret} -h db.example.org sales",
            "sshpass -p '{secret}' ssh -o StrictHostKeyChecking=no {user}@{ip}",
            "smbclient //fs/share -U CORP/{user}%{secret}",
            "xfreerdp /v:{ip} /u:{user} /p:{secret} /cert:ignore",
            "ldapsearch -x -H ldap://{ip} -D cn=reader,dc=corp -w {secret} -b dc=corp",
            "docker login -u {user} -p {secret} registry.example.org",
            "wget --user={user} --password={secret} https://files.example.org/x.zip",
            "openssl enc -aes-256-cbc -in db.sql -out db.enc -pass pass:{secret}",
            "7z a -p{secret} backup.7z /srv/data",
            "PGPASSWORD={secret} psql -U {user} -h {ip} prod",
            "secretsdump.py CORP/{user}:{secret}@{ip}",
            "redis-cli -h {ip} -a {secret} info",
        ],
    ),
    (
        "powershell-4104",
        &[
            "$pw = ConvertTo-SecureString '{secret}' -AsPlainText -Force; $c = New-Object PSCredential('{user}', $pw)",
            "Invoke-Command -ComputerName {host} -ScriptBlock {{ net user {user} {secret} /add }}",
        ],
    ),
    (
        "windows-json-4688",
        &[
            "{{\"EventID\":4688,\"Computer\":\"{fqdn}\",\"SubjectUserName\":\"{user}\",\"NewProcessName\":\"C:\\\\Windows\\\\System32\\\\net.exe\",\"CommandLine\":\"net user {user2} {secret} /add\"}}",
        ],
    ),
    (
        "cef",
        &["CEF:0|Fortinet|FortiGate|7.2|13|traffic|3|src={ip} dst={ip2} suser={user} shost={host} act=accept"],
    ),
    (
        "leef",
        &["LEEF:2.0|Lancope|StealthWatch|1.0|41|src={ip}\tdst={ip2}\tusrName={user}\tidentHostName={host}"],
    ),
    (
        "apache-access",
        &["{ip} - {user} [{dd}/Dec/2026:{time} +0100] \"GET /portal/login?token={token}&lang=en HTTP/1.1\" 200 512"],
    ),
    (
        "suricata-eve",
        &[
            "{{\"event_type\":\"alert\",\"src_ip\":\"{ip}\",\"dest_ip\":\"{ip2}\",\"http\":{{\"hostname\":\"{fqdn}\"}},\"alert\":{{\"signature\":\"ET POLICY Possible Kerberoasting\"}}}}",
        ],
    ),
    (
        "azure-signin",
        &[
            "{{\"userPrincipalName\":\"{email}\",\"userDisplayName\":\"{person}\",\"ipAddress\":\"{ip}\",\"appDisplayName\":\"Office 365 Exchange Online\"}}",
        ],
    ),
    (
        "cloudtrail",
        &[
            "{{\"eventName\":\"ConsoleLogin\",\"userIdentity\":{{\"type\":\"IAMUser\",\"userName\":\"{user}\"}},\"sourceIPAddress\":\"{ip}\"}}",
        ],
    ),
    (
        "k8s-audit",
        &[
            "{{\"kind\":\"Event\",\"verb\":\"create\",\"user\":{{\"username\":\"{user}\"}},\"sourceIPs\":[\"{ip}\"],\"objectRef\":{{\"resource\":\"secrets\"}}}}",
        ],
    ),
    (
        "auditd",
        &[
            "type=USER_LOGIN msg=audit({n}.{pid}:{n}): pid={pid} uid=0 auid=1000 ses=3 msg='op=login acct=\"{user}\" exe=\"/usr/sbin/sshd\" hostname={host} addr={ip} terminal=ssh res=success'",
        ],
    ),
    (
        "postfix",
        &[
            "{mon} {day} {time} {host} postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from unknown[{ip}]: 554 5.7.1 <{email}>: Relay access denied",
        ],
    ),
    (
        "openvpn",
        &["{iso} {ip}:{port} [{user}] Peer Connection Initiated with [AF_INET]{ip2}:{port}"],
    ),
    (
        "dhcp",
        &["{mon} {day} {time} {host} dnsmasq-dhcp[{pid}]: DHCPACK(eth0) {ip} {mac} {host2}"],
    ),
    (
        "app-json",
        &[
            "{{\"level\":\"error\",\"msg\":\"db connect failed\",\"password\":\"{secret}\",\"user\":\"{user}\",\"phone\":\"{phone}\"}}",
        ],
    ),
    (
        "payments",
        &[
            "{iso} pay-gw[{pid}]: charge declined card={card} iban={iban} customer={email}",
            "{iso} pay-gw[{pid}]: refund to {iban} for card {card}",
        ],
    ),
    (
        "ticket-en",
        &[
            "Ticket 4711: user {user} reported a phishing mail; account {user2} on host {host} was isolated by the analyst {person}.",
            "Login by account {user} from {ip} flagged; contact {person}, phone: {phone}.",
            "Customer {person} disputes card payment, card number: {card}, IBAN: {iban}.",
        ],
    ),
    (
        "email-de",
        &[
            "Hallo Herr {surname}, der Benutzer {user} hat sich auf dem Rechner {host} angemeldet. Passwort: {secret}",
            "Bitte Konto {user} sperren, Telefon: {phone}, Steuer-ID: {digits11}.",
        ],
    ),
    (
        "note-fr",
        &[
            "Le compte {user} a été verrouillé sur le poste {host}. Contacter M. {surname} au tél. {phone}.",
            "Mot de passe : {secret} ; numéro de sécurité sociale : {digits13}",
        ],
    ),
    (
        "hr-pl",
        &[
            "Pracownik {person}, PESEL: {digits11}, użytkownik {user}, hasło: {secret}",
            "Pan {surname} zgłosił, że komputer {host} jest zainfekowany.",
        ],
    ),
    (
        "note-it",
        &["L'utente {user} ha effettuato l'accesso dal computer {host}; codice fiscale: {cf}"],
    ),
    (
        "note-es",
        &["El usuario {user} inició sesión en el equipo {host}; DNI: {dni}, contraseña: {secret}"],
    ),
    (
        "note-nl",
        &["Gebruiker {user} op computer {host}; BSN: {digits9}, wachtwoord: {secret}"],
    ),
    (
        "benign",
        &[
            "Windows Defender scan completed on volume C: with 0 threats",
            "Suspicious Execution of PowerShell with Base64 Encoded Command",
            "net use Z: /delete /yes",
            "docker run -p 8080:80 -d nginx:1.27",
            "The user logged in from the console and the session was locked.",
            "Scheduled Task Created Via Schtasks From Suspicious Location",
            "OS Credential Dumping: LSASS Memory (T1003.001) via Mimikatz Golden Ticket",
            "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE /n",
            "Windows Server 2019 Datacenter build 17763 host header mismatch",
            "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
        ],
    ),
];

/// Which type a personal slot holds.
fn slot_type(slot: &str) -> Option<&'static str> {
    Some(match slot {
        "user" | "user2" => "user",
        "host" | "host2" | "fqdn" => "host",
        "ip" | "ip2" => "ip",
        "email" => "email",
        "person" | "surname" => "person",
        "secret" | "token" => "secret",
        "phone" => "phone",
        "card" => "card",
        "iban" => "iban",
        "mac" => "mac",
        "dni" | "digits9" | "digits11" | "digits13" | "cf" => "natid",
        _ => return None,
    })
}

/// Values drawn for one line.
struct Draw<'a> {
    rng: &'a mut StdRng,
    given: &'a [&'a str],
    surnames: &'a [&'a str],
}

fn pick<'a>(rng: &mut StdRng, from: &[&'a str]) -> &'a str {
    from[rng.random_range(0..from.len())]
}

/// A name from `from` written in ASCII (accounts are), at least two letters long.
fn folded(rng: &mut StdRng, from: &[&str]) -> String {
    loop {
        let f = ascii_fold(pick(rng, from));
        if f.len() >= 2 {
            return f;
        }
    }
}

fn digits(rng: &mut StdRng, n: usize) -> String {
    (0..n).map(|_| char::from(b'0' + rng.random_range(0..10u8))).collect()
}

fn ascii_fold(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            let c = match c {
                'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' | 'ą' => 'a',
                'é' | 'è' | 'ê' | 'ë' | 'ę' | 'ě' => 'e',
                'í' | 'ì' | 'î' | 'ï' => 'i',
                'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ø' | 'ő' => 'o',
                'ú' | 'ù' | 'û' | 'ü' | 'ů' | 'ű' => 'u',
                'ł' => 'l',
                'ś' | 'š' => 's',
                'ż' | 'ź' | 'ž' => 'z',
                'ć' | 'č' | 'ç' => 'c',
                'ń' | 'ñ' | 'ň' => 'n',
                'ř' => 'r',
                'ý' => 'y',
                'ď' => 'd',
                'ť' => 't',
                c => c.to_ascii_lowercase(),
            };
            c.is_ascii_alphanumeric().then_some(c)
        })
        .collect()
}

impl Draw<'_> {
    fn value(&mut self, slot: &str) -> String {
        let rng = &mut *self.rng;
        match slot {
            "user" | "user2" => {
                let g = folded(rng, self.given);
                let s = folded(rng, self.surnames);
                match rng.random_range(0..5) {
                    0 => g,
                    1 => format!("{}{s}", &g[..1]),
                    2 => format!("{g}.{s}"),
                    3 => format!("{s}{}", rng.random_range(1..99)),
                    _ => format!("{}_{}", pick(rng, &["svc", "adm", "ext"]), s),
                }
            }
            "host" | "host2" => match rng.random_range(0..4) {
                0 => format!("PC-{:04}", rng.random_range(1..9999)),
                1 => format!(
                    "{}{:02}",
                    pick(rng, &["db", "web", "app", "dc", "fs", "mail"]),
                    rng.random_range(1..99)
                ),
                2 => format!(
                    "{}-{}-{:02}",
                    pick(rng, &["WS", "SRV", "LT"]),
                    pick(rng, &["FIN", "HR", "OPS", "DEV"]),
                    rng.random_range(1..99)
                ),
                _ => format!(
                    "LAPTOP-{}",
                    digits(rng, 2) + &"ABCDEFGHJK"[rng.random_range(0..5)..][..5]
                ),
            },
            "fqdn" => format!(
                "{}{:02}.{}",
                pick(rng, &["ws", "srv", "db", "dc"]),
                rng.random_range(1..99),
                pick(
                    rng,
                    &["corp", "lan", "local", "internal", "intranet", "home.arpa", "ad.corp"]
                )
            ),
            "ip" | "ip2" => format!(
                "{}.{}.{}.{}",
                pick(rng, &["10", "172", "192", "185", "203", "91"]),
                rng.random_range(0..255),
                rng.random_range(0..255),
                rng.random_range(1..254)
            ),
            "email" => format!(
                "{}.{}@{}",
                folded(rng, self.given),
                folded(rng, self.surnames),
                pick(rng, &["example.eu", "bank.example", "ministry.example.fr"])
            ),
            "person" => format!("{} {}", pick(rng, self.given), pick(rng, self.surnames)),
            "surname" => pick(rng, self.surnames).to_owned(),
            "secret" => {
                let alphabet = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789!#%+-_";
                let n = rng.random_range(8..16);
                let mut s: String = (0..n)
                    .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
                    .collect();
                s.push(char::from(b'0' + rng.random_range(0..10u8)));
                s
            }
            "token" => {
                let alphabet = b"abcdef0123456789";
                (0..32).map(|_| char::from(alphabet[rng.random_range(0..16)])).collect()
            }
            "phone" => format!(
                "+{} {} {} {} {}",
                pick(rng, &["33", "48", "49", "39", "34", "31"]),
                rng.random_range(1..9),
                digits(rng, 2),
                digits(rng, 3),
                digits(rng, 3)
            ),
            "card" => luhn(rng),
            "iban" => iban(rng),
            "mac" => (0..6)
                .map(|_| format!("{:02x}", rng.random_range(0..256)))
                .collect::<Vec<_>>()
                .join(":"),
            "dni" => digits(rng, 8) + &char::from(b'A' + rng.random_range(0..26u8)).to_string(),
            "digits9" => digits(rng, 9),
            "digits11" => digits(rng, 11),
            "digits13" => digits(rng, 13),
            "cf" => {
                let l = |rng: &mut StdRng, n: usize| -> String {
                    (0..n).map(|_| char::from(b'A' + rng.random_range(0..26u8))).collect()
                };
                format!(
                    "{}{}{}{}{}{}",
                    l(rng, 6),
                    digits(rng, 2),
                    l(rng, 1),
                    digits(rng, 2),
                    l(rng, 1),
                    digits(rng, 3)
                ) + &l(rng, 1)
            }
            "mon" => pick(rng, &["Jan", "Feb", "Mar", "Nov", "Dec"]).to_owned(),
            "day" => format!("{:>2}", rng.random_range(1..29)),
            "dd" => format!("{:02}", rng.random_range(1..29)),
            "time" => format!(
                "{:02}:{:02}:{:02}",
                rng.random_range(0..24),
                rng.random_range(0..60),
                rng.random_range(0..60)
            ),
            "iso" => format!(
                "2026-12-{:02}T{:02}:{:02}:00Z",
                rng.random_range(1..29),
                rng.random_range(0..24),
                rng.random_range(0..60)
            ),
            "pid" | "n" => rng.random_range(1..99999).to_string(),
            "port" => rng.random_range(1024..65535).to_string(),
            other => panic!("unknown slot {other}"),
        }
    }
}

/// A Luhn-valid card number in groups of four.
fn luhn(rng: &mut StdRng) -> String {
    let mut d: Vec<u32> = std::iter::once(4)
        .chain((0..14).map(|_| rng.random_range(0..10)))
        .collect();
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 0 {
                let y = x * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                x
            }
        })
        .sum();
    d.push((10 - sum % 10) % 10);
    d.chunks(4)
        .map(|c| c.iter().map(|x| char::from_digit(*x, 10).unwrap()).collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A German IBAN with valid check digits.
fn iban(rng: &mut StdRng) -> String {
    let bban = digits(rng, 18);
    let numeric = format!("{bban}131400");
    let rem = numeric.bytes().fold(0u64, |r, b| (r * 10 + u64::from(b - b'0')) % 97);
    format!("DE{:02}{bban}", 98 - rem)
}

/// `lines` cases drawn with `seed`, every format in turn.
pub fn generate(seed: u64, lines: usize) -> Vec<Case> {
    let given: Vec<&str> = include_str!("../data/given-names.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && l.chars().all(char::is_alphabetic))
        .collect();
    let surnames: Vec<&str> = include_str!("../data/surnames.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && l.chars().all(char::is_alphabetic))
        .collect();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(lines);
    for i in 0..lines {
        let (format, templates) = TEMPLATES[i % TEMPLATES.len()];
        let template = templates[rng.random_range(0..templates.len())];
        let mut draw = Draw {
            rng: &mut rng,
            given: &given,
            surnames: &surnames,
        };
        let (text, expect) = fill(template, &mut draw);
        out.push(Case { format, text, expect });
    }
    out
}

/// Fills a template's slots (`{{` and `}}` are braces).
fn fill(template: &str, draw: &mut Draw<'_>) -> (String, Vec<(&'static str, String)>) {
    let mut text = String::new();
    let mut expect = Vec::new();
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        text.push_str(&rest[..i]);
        let brace = &rest[i..];
        if brace.starts_with("{{") || brace.starts_with("}}") {
            text.push_str(&brace[..1]);
            rest = &brace[2..];
            continue;
        }
        let end = brace.find('}').expect("a slot closes");
        let slot = &brace[1..end];
        let value = values
            .entry(slot.to_owned())
            .or_insert_with(|| draw.value(slot))
            .clone();
        if let Some(kind) = slot_type(slot) {
            expect.push((kind, value.clone()));
        }
        // A JSON template's values are JSON strings.
        text.push_str(&value);
        rest = &brace[end + 1..];
    }
    text.push_str(rest);
    (text, expect)
}

#[derive(Default, Debug, Clone, Copy)]
pub struct Score {
    pub expected: u64,
    pub found: u64,
    pub predicted: u64,
    pub correct: u64,
}

/// Scores per type, and what was missed or found unexpectedly.
pub fn score(cases: &[Case]) -> (BTreeMap<&'static str, Score>, Vec<String>) {
    let recognizers = Recognizers::new(&RecognizerConfig::default()).unwrap();
    let redactor = Redactor::new(recognizers, Domain::derive(&[7; 32], "corpus", 0));
    let mut scores: BTreeMap<&'static str, Score> = BTreeMap::new();
    let mut notes = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        let replacements = redactor.redact_line(&case.text).unwrap().replacements;
        let mut expected: Vec<(&str, String)> = case.expect.clone();
        expected.sort();
        expected.dedup();
        for (kind, _) in &expected {
            scores.entry(kind).or_default().expected += 1;
        }
        let mut seen: Vec<(&str, String)> = Vec::new();
        for r in &replacements {
            let kind = r.entity.prefix();
            let pair = (kind, r.original.clone());
            if seen.contains(&pair) {
                continue;
            }
            seen.push(pair);
            let s = scores.entry(kind).or_default();
            s.predicted += 1;
            if let Some(i) = expected.iter().position(|(k, v)| *k == kind && *v == r.original) {
                expected.swap_remove(i);
                s.correct += 1;
                s.found += 1;
            } else {
                notes.push(format!(
                    "line {} ({}): unexpected {kind} `{}` ({}) in {:?}",
                    n + 1,
                    case.format,
                    r.original,
                    r.recognizer,
                    case.text
                ));
            }
        }
        for (kind, value) in expected {
            notes.push(format!(
                "line {} ({}): missed {kind} `{value}` in {:?}",
                n + 1,
                case.format,
                case.text
            ));
        }
    }
    (scores, notes)
}

pub fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

/// The formats the templates cover.
pub fn formats() -> usize {
    TEMPLATES.len()
}

#[allow(dead_code, reason = "tests include this file for `generate` and `score`")]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
    let seed = arg("--seed").map_or_else(|| rand::rng().random(), |s| s.parse().expect("--seed N"));
    let lines = arg("--lines").map_or(2400, |s| s.parse().expect("--lines N"));
    let cases = generate(seed, lines);
    if let Some(path) = arg("--write") {
        let body: String = cases
            .iter()
            .map(|c| serde_json::json!({"format": c.format, "text": c.text, "expect": c.expect}).to_string() + "\n")
            .collect();
        std::fs::write(path, body).expect("writing the corpus");
    }
    let (scores, notes) = score(&cases);
    println!("seed {seed}: {lines} lines in {} formats", formats());
    println!("{:<8} {:>8} {:>7} {:>9}", "type", "expected", "recall", "precision");
    for (kind, s) in &scores {
        println!(
            "{kind:<8} {:>8} {:>7.3} {:>9.3}",
            s.expected,
            ratio(s.found, s.expected),
            ratio(s.correct, s.predicted)
        );
    }
    if args.iter().any(|a| a == "--misses") {
        for n in &notes {
            eprintln!("{n}");
        }
    }
}
