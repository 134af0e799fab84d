//! SigmaHQ's process-creation rules over Windows' own audit events. Each Sysmon event 1 of the
//! SigmaHQ regression samples is written again as the Security 4688 record Windows writes for
//! the same start: its field names, its integrity level as a SID, its process ids in hex, its
//! account split into user and domain. Every rule that fires on the Sysmon event and tests only
//! what a 4688 record carries must fire on the twin too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::collections::{BTreeMap, BTreeSet};

mod common;

use common::walk;
use jiff::Timestamp;
use rempart_detect::RuleSet;
use rempart_ingest::decode::{DecodeOptions, Decoded};
use rempart_model::{Event, Format};
use serde_json::{Map, Value, json};

/// The fields a 4688 record carries, under the names Sigma gives them.
const CARRIED: &[&str] = &[
    "Image",
    "ParentImage",
    "CommandLine",
    "User",
    "IntegrityLevel",
    "LogonId",
    "ProcessId",
    "ParentProcessId",
    "EventID",
    "Channel",
    "Computer",
];

/// The field names a rule's detection tests (`Name|modifier:` and `- Name|modifier:` lines
/// below the search identifiers).
fn fields_of(rule: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut in_detection = false;
    let mut ident_indent = None;
    for line in rule.lines() {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim_start().trim_start_matches("- ");
        if indent == 0 {
            in_detection = line.starts_with("detection:");
            ident_indent = None;
            continue;
        }
        if !in_detection || t.is_empty() || t.starts_with('#') {
            continue;
        }
        let ident = *ident_indent.get_or_insert(indent);
        if indent == ident {
            continue;
        }
        let name: String = t
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() && t[name.len()..].starts_with(['|', ':']) {
            out.insert(name);
        }
    }
    out
}

const SIDS: [(&str, &str); 4] = [
    ("Low", "S-1-16-4096"),
    ("Medium", "S-1-16-8192"),
    ("High", "S-1-16-12288"),
    ("System", "S-1-16-16384"),
];

/// The Security 4688 record Windows writes for the process start Sysmon recorded in `data`.
fn twin(sysmon: &Event) -> Option<Event> {
    let event = sysmon.fields.get("Event")?;
    let data = event.get("EventData")?.as_object()?;
    let s = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let hex = |k: &str| {
        let n = match data.get(k)? {
            Value::Number(n) => n.as_u64()?,
            Value::String(s) => s.parse().ok()?,
            _ => return None,
        };
        Some(format!("0x{n:x}"))
    };
    let user = s("User");
    let (domain, name) = user.split_once('\\').unwrap_or(("-", user.as_str()));
    let level = s("IntegrityLevel");
    let label = SIDS
        .iter()
        .find(|(l, _)| l.eq_ignore_ascii_case(&level))
        .map_or("S-1-16-8192", |(_, sid)| sid);
    let record = json!({"Event": {
        "System": {
            "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}},
            "EventID": 4688, "Channel": "Security",
            "Computer": event["System"]["Computer"].clone(),
        },
        "EventData": {
            "SubjectUserSid": "S-1-5-21-1-2-3-1001", "SubjectUserName": name, "SubjectDomainName": domain,
            "SubjectLogonId": s("LogonId"), "NewProcessId": hex("ProcessId")?, "NewProcessName": s("Image"),
            "TokenElevationType": "%%1936", "ProcessId": hex("ParentProcessId").unwrap_or_else(|| "0x0".into()),
            "CommandLine": s("CommandLine"), "TargetUserSid": "S-1-0-0", "TargetUserName": "-",
            "TargetDomainName": "-", "TargetLogonId": "0x0", "ParentProcessName": s("ParentImage"),
            "MandatoryLabel": label,
        }
    }});
    let Value::Object(map) = record else { return None };
    Some(Event::new(Format::Evtx, sysmon.time, sysmon.ingested, map))
}

fn is_sysmon(e: &Event, id: u64) -> bool {
    let system = &e.fields["Event"]["System"];
    system["Channel"] == "Microsoft-Windows-Sysmon/Operational" && system["EventID"] == id
}

/// The fields a 4657 record carries, under the names Sigma gives them.
const REGISTRY_CARRIED: &[&str] = &[
    "TargetObject",
    "Details",
    "EventType",
    "Image",
    "ProcessId",
    "User",
    "EventID",
    "Channel",
    "Computer",
];

/// The Security 4657 record Windows writes for the registry value Sysmon saw set (event 13).
fn registry_twin(sysmon: &Event) -> Option<Event> {
    let event = sysmon.fields.get("Event")?;
    let data = event.get("EventData")?.as_object()?;
    let s = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let target = s("TargetObject");
    let (key, value) = target.rsplit_once('\\')?;
    let key = if let Some(rest) = key.strip_prefix("HKLM") {
        format!("\\REGISTRY\\MACHINE{rest}")
    } else if let Some(rest) = key.strip_prefix("HKU") {
        format!("\\REGISTRY\\USER{rest}")
    } else {
        return None;
    };
    let details = s("Details");
    let hex = |t: &str| u64::from_str_radix(t.trim_start_matches("0x"), 16).ok();
    let (kind, new) = if let Some(d) = details.strip_prefix("DWORD (").and_then(|d| d.strip_suffix(')')) {
        ("%%1876", hex(d)?.to_string())
    } else if let Some(q) = details.strip_prefix("QWORD (").and_then(|d| d.strip_suffix(')')) {
        let (hi, lo) = q.split_once('-')?;
        ("%%1883", ((hex(hi)? << 32) | hex(lo)?).to_string())
    } else if details == "Binary Data" {
        ("%%1875", "01 02 03".to_owned())
    } else if details == "(Empty)" {
        ("%%1873", String::new())
    } else {
        ("%%1873", details.clone())
    };
    let user = s("User");
    let (domain, name) = user.split_once('\\').unwrap_or(("-", user.as_str()));
    let pid = match data.get("ProcessId")? {
        Value::Number(n) => n.as_u64()?,
        Value::String(t) => t.parse().ok()?,
        _ => return None,
    };
    let record = json!({"Event": {
        "System": {
            "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}},
            "EventID": 4657, "Channel": "Security", "Computer": event["System"]["Computer"].clone(),
        },
        "EventData": {
            "SubjectUserSid": "S-1-5-21-1-2-3-1001", "SubjectUserName": name, "SubjectDomainName": domain,
            "SubjectLogonId": "0x3e7", "ObjectName": key, "ObjectValueName": value, "HandleId": "0x2bc",
            "OperationType": "%%1905", "OldValueType": kind, "OldValue": "", "NewValueType": kind,
            "NewValue": new, "ProcessId": format!("0x{pid:x}"), "ProcessName": s("Image"),
        }
    }});
    let Value::Object(map) = record else { return None };
    Some(Event::new(Format::Evtx, sysmon.time, sysmon.ingested, map))
}

/// Every rule of `dir` that fires on a Sysmon event `id` of its regression samples and tests
/// only `carried` fields also fires on the event's audit `twin`; returns (twins, carried over).
fn twins_fire_alike(dir: &str, id: u64, carried: &[&str], twin: fn(&Event) -> Option<Event>) -> (usize, usize) {
    let sigma = common::data().join("sigma");
    let mut files = Vec::new();
    walk(&sigma.join("rules/windows").join(dir), &mut files);
    let rules: Vec<(String, String)> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .map(|p| (p.display().to_string(), std::fs::read_to_string(p).unwrap()))
        .collect();
    let fields: BTreeMap<String, BTreeSet<String>> = rules
        .iter()
        .filter_map(|(_, text)| {
            let id = text.lines().find_map(|l| l.strip_prefix("id:"))?.trim().to_owned();
            Some((id, fields_of(text)))
        })
        .collect();
    let (set, _) = RuleSet::load(rules.iter().map(|(f, t)| (f.as_str(), t.as_str())));
    let mut samples = Vec::new();
    walk(&sigma.join("regression_data/rules/windows").join(dir), &mut samples);
    let (mut expected, mut missed, mut twins) = (0, Vec::new(), 0);
    for sample in samples.iter().filter(|p| p.extension().is_some_and(|e| e == "json")) {
        let mut events = Vec::new();
        rempart_ingest::files::decode_file(sample, &DecodeOptions::default(), Timestamp::UNIX_EPOCH, &mut |d| {
            if let Decoded::Event(e) = d {
                events.push(e);
            }
        });
        for sysmon in events.iter().filter(|e| is_sysmon(e, id)) {
            let Some(twin) = twin(sysmon) else { continue };
            twins += 1;
            let found = set.evaluate(&twin);
            // The prefilter's literals hold under the mapping: nothing it skips would match.
            assert_eq!(found, set.evaluate_exhaustively(&twin), "{}", sample.display());
            let on_twin: BTreeSet<String> = found.into_iter().filter_map(|m| m.rule_id).collect();
            for m in set.evaluate(sysmon) {
                let Some(id) = m.rule_id else { continue };
                let tested = &fields[&id];
                if !tested.iter().all(|f| carried.contains(&f.as_str())) {
                    continue;
                }
                expected += 1;
                if !on_twin.contains(&id) {
                    missed.push(format!("{} ({}): {tested:?}", m.rule_title, sample.display()));
                }
            }
        }
    }
    eprintln!(
        "{dir}: {twins} twins; {expected} rule matches carried over, {} missed",
        missed.len()
    );
    assert!(
        missed.is_empty(),
        "{} of {expected} silent on the twins:\n{}",
        missed.len(),
        missed.join("\n")
    );
    (twins, expected)
}

/// SigmaHQ's `registry_set` rules over Security 4657: each Sysmon event 13 of the regression
/// samples written as the 4657 record of the same change (`\REGISTRY\MACHINE` paths, the data
/// as a type code and a value).
#[test]
fn registry_set_rules_fire_on_the_security_4657_twin_of_each_sysmon_sample() {
    let (twins, expected) = twins_fire_alike("registry/registry_set", 13, REGISTRY_CARRIED, registry_twin);
    assert!(twins >= 20, "{twins} Sysmon value changes in the samples");
    assert!(expected >= 15, "{expected} rule matches to carry over");
}

#[test]
fn process_creation_rules_fire_on_the_security_4688_twin_of_each_sysmon_sample() {
    let (twins, expected) = twins_fire_alike("process_creation", 1, CARRIED, twin);
    assert!(twins > 100, "{twins} Sysmon process starts in the samples");
    assert!(expected > 40, "{expected} rule matches to carry over");
}

/// The values 4688 writes its own way come out as Sysmon writes them.
#[test]
fn a_4688_record_reads_with_sysmon_s_names_and_values() {
    let mut map = Map::new();
    map.insert(
        "Event".into(),
        json!({"System": {"EventID": 4688, "Channel": "Security"}, "EventData": {
            "SubjectUserName": "WS01$", "SubjectDomainName": "CORP", "SubjectLogonId": "0x3e7",
            "NewProcessId": "0x1a4", "NewProcessName": "C:\\Windows\\System32\\cmd.exe", "ProcessId": "0x2f0",
            "TargetUserName": "alice", "TargetDomainName": "CORP", "TargetLogonId": "0x5b2c1",
            "ParentProcessName": "C:\\Windows\\explorer.exe", "MandatoryLabel": "S-1-16-12288"}}),
    );
    let e = Event::new(Format::Evtx, Timestamp::UNIX_EPOCH, Timestamp::UNIX_EPOCH, map);
    let v = rempart_detect::sigma_view(&e);
    assert_eq!(v["Image"], "C:\\Windows\\System32\\cmd.exe");
    assert_eq!(v["ParentImage"], "C:\\Windows\\explorer.exe");
    assert_eq!(
        (v["ProcessId"].as_u64(), v["ParentProcessId"].as_u64()),
        (Some(420), Some(752))
    );
    assert_eq!(v["IntegrityLevel"], "High");
    assert_eq!(v["User"], "CORP\\alice", "the new process's account, not its creator's");
    assert_eq!(v["LogonId"], "0x5b2c1");
    assert_eq!(
        v["NewProcessName"], "C:\\Windows\\System32\\cmd.exe",
        "its own names stay"
    );
}

/// A rule of SigmaHQ's, by its path under `rules/`.
fn sigmahq(path: &str) -> RuleSet {
    let file = common::data().join("sigma/rules").join(path);
    let text = std::fs::read_to_string(&file).unwrap();
    let (set, report) = RuleSet::load([(file.to_str().unwrap(), text.as_str())]);
    assert_eq!(report.loaded.len(), 1, "{:?}", report.rejected);
    set
}

fn windows(system: Value, data: Value) -> Event {
    let Value::Object(map) = json!({"Event": {"System": system, "EventData": data}}) else {
        unreachable!()
    };
    Event::new(Format::Evtx, Timestamp::UNIX_EPOCH, Timestamp::UNIX_EPOCH, map)
}

/// SigmaHQ's product-less `antivirus` rules read Windows Defender's detections (`Signature` is
/// the threat's name, `Filename` its path), and still any other product's log; not the same
/// fields on another Defender event or another channel.
#[test]
fn antivirus_rules_read_defender_detections() {
    let set = sigmahq("category/antivirus/av_hacktool.yml");
    let defender = |id: u64, channel: &str| {
        windows(
            json!({"EventID": id, "Channel": channel,
                   "Provider": {"#attributes": {"Name": "Microsoft-Windows-Windows Defender"}}}),
            json!({"Threat Name": "HackTool:Win32/Mimikatz!pz", "Path": "file:_C:\\Users\\bob\\m.exe",
                   "Severity Name": "High", "Category Name": "Tool"}),
        )
    };
    let fired = |e: &Event| !set.evaluate(e).is_empty();
    for id in [1116, 1117] {
        assert!(
            fired(&defender(id, "Microsoft-Windows-Windows Defender/Operational")),
            "{id}"
        );
    }
    assert!(
        !fired(&defender(5007, "Microsoft-Windows-Windows Defender/Operational")),
        "a settings change"
    );
    assert!(!fired(&defender(1116, "Application")), "another channel");
    let Value::Object(cef) = json!({"Signature": "HackTool.Mimikatz", "Filename": "m.exe"}) else {
        unreachable!()
    };
    let other = Event::new(Format::Cef, Timestamp::UNIX_EPOCH, Timestamp::UNIX_EPOCH, cef);
    assert!(fired(&other), "another product's antivirus log");
}

/// `<Data>` elements without names (MSSQL, ESENT, installer events) are the field `Data`: the
/// evtx crate gathers their texts as `{"#text": [...]}`, other exports as a list.
#[test]
fn unnamed_data_elements_are_the_field_data() {
    let set = sigmahq("windows/builtin/application/mssqlserver/win_mssql_xp_cmdshell_audit_log.yml");
    let system = json!({"EventID": 33205, "Channel": "Application",
                        "Provider": {"#attributes": {"Name": "MSSQLSERVER"}}});
    let audit = "audit_schema_version:1\nevent_time:2026-12-05 10:00:00\naction_id:EX\nobject_name:xp_cmdshell\nstatement:EXEC xp_cmdshell 'whoami'";
    for data in [
        json!({"Data": {"#text": ["", audit]}}),
        json!({"Data": {"#text": audit}}),
        json!({"Data": [audit, ""]}),
        json!({"Data": audit}),
    ] {
        let e = windows(system.clone(), data.clone());
        assert_eq!(set.evaluate(&e).len(), 1, "{data}");
    }
    let quiet = windows(
        system,
        json!({"Data": {"#text": ["object_name:sp_who", "statement:EXEC"]}}),
    );
    assert!(set.evaluate(&quiet).is_empty());
}

/// Trailing blanks Windows writes into some values (`NtLmSsp ` in a 4624 logon) do not keep
/// SigmaHQ's rules from matching; the record keeps them under its dotted path.
#[test]
fn trailing_blanks_in_event_data_are_not_compared() {
    let set = sigmahq("windows/builtin/security/account_management/win_security_pass_the_hash_2.yml");
    let logon = |process: &str| {
        windows(
            json!({"EventID": 4624, "Channel": "Security"}),
            json!({"SubjectUserSid": "S-1-0-0", "LogonType": 3, "LogonProcessName": process,
                   "KeyLength": 0, "TargetUserName": "bob"}),
        )
    };
    for process in ["NtLmSsp ", "NtLmSsp", "NtLmSsp\t "] {
        assert_eq!(set.evaluate(&logon(process)).len(), 1, "{process:?}");
    }
    assert!(set.evaluate(&logon("Kerberos ")).is_empty());
    let v = rempart_detect::sigma_view(&logon("NtLmSsp "));
    assert_eq!(v["LogonProcessName"], "NtLmSsp");
    assert_eq!(v["Event"]["EventData"]["LogonProcessName"], "NtLmSsp ");
}

/// Classic PowerShell (400, 800) writes its fields into unnamed `<Data>` elements, which
/// SigmaHQ's `ps_classic_*` rules test as `Data`: the downgrade attack (a 2.0 engine under a
/// newer host) is found in the third element's text.
#[test]
fn classic_powershell_rules_read_the_unnamed_data() {
    let set = sigmahq("windows/powershell/powershell_classic/posh_pc_downgrade_attack.yml");
    let start = |engine: &str, host: &str| {
        let details = format!(
            "\tNewEngineState=Available\r\n\tPreviousEngineState=None\r\n\r\n\tSequenceNumber=13\r\n\r\n\tHostName=ConsoleHost\r\n\tHostVersion={host}\r\n\tHostId=5cbb33bf-acf7-47cc-9242-141cd0ba9f0c\r\n\tHostApplication=powershell.exe -version 2 -c whoami\r\n\tEngineVersion={engine}\r\n"
        );
        windows(
            json!({"EventID": 400, "Channel": "Windows PowerShell",
                   "Provider": {"#attributes": {"Name": "PowerShell"}}}),
            json!({"Data": {"#text": ["Available", "None", details]}}),
        )
    };
    assert_eq!(
        set.evaluate(&start("2.0", "5.1.19041.1")).len(),
        1,
        "a 2.0 engine under a 5.1 host"
    );
    assert!(set.evaluate(&start("5.1.19041.1", "5.1.19041.1")).is_empty());
    assert!(set.evaluate(&start("2.0", "2.0")).is_empty(), "a real 2.0 host");
}

/// Security 5156 names the application by its kernel path (`\device\harddiskvolumeN\…`); the
/// rules name it by its drive path. SigmaHQ's outbound Kerberos rule stays silent on lsass
/// whatever the volume's number and the path's case, and fires on another program.
#[test]
fn network_connection_rules_read_the_application_of_a_5156_by_its_drive_path() {
    let set = sigmahq("windows/network_connection/net_connection_win_susp_outbound_kerberos_connection.yml");
    let connection = |application: &str, port: &str, direction: &str| {
        windows(
            json!({"EventID": 5156, "Channel": "Security",
                   "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}}}),
            json!({"ProcessID": 520, "Application": application, "Direction": direction,
                   "SourceAddress": "10.0.2.17", "SourcePort": "49263", "DestAddress": "10.0.2.15",
                   "DestPort": port, "Protocol": 6, "LayerName": "%%14611"}),
        )
    };
    let fired = |e: &Event| !set.evaluate(e).is_empty();
    for volume in [1, 2, 3, 12] {
        for lsass in ["windows\\system32\\lsass.exe", "Windows\\System32\\LSASS.EXE"] {
            let path = format!("\\device\\harddiskvolume{volume}\\{lsass}");
            assert!(!fired(&connection(&path, "88", "%%14593")), "{path}");
        }
        let other = format!("\\device\\harddiskvolume{volume}\\users\\bob\\appdata\\rubeus.exe");
        assert!(fired(&connection(&other, "88", "%%14593")), "{other}");
        assert!(!fired(&connection(&other, "443", "%%14593")), "another port");
        assert!(!fired(&connection(&other, "88", "%%14592")), "inbound");
    }
    // A path already in drive form, or of another form, is read as written.
    assert!(!fired(&connection("C:\\Windows\\System32\\lsass.exe", "88", "%%14593")));
    assert!(fired(&connection(
        "\\device\\mup\\srv\\share\\tool.exe",
        "88",
        "%%14593"
    )));
    let view = rempart_detect::sigma_view(&connection("\\Device\\HarddiskVolume4\\tools\\x.exe", "88", "%%14593"));
    assert_eq!(view["Image"], "C:\\tools\\x.exe");
    assert_eq!(
        view["Application"], "\\Device\\HarddiskVolume4\\tools\\x.exe",
        "its own name stays"
    );
}
