//! Logsource routing: a rule fires only on events of its logsource.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use jiff::Timestamp;
use rempart_detect::RuleSet;
use rempart_model::{Event, Format};
use serde_json::{Value, json};

fn windows(channel: &str, id: u64, data: Value) -> Event {
    let Value::Object(map) = json!({"Event": {"System": {"EventID": id, "Channel": channel}, "EventData": data}})
    else {
        unreachable!()
    };
    Event::new(Format::Evtx, Timestamp::UNIX_EPOCH, Timestamp::UNIX_EPOCH, map)
}

fn titles(set: &RuleSet, e: &Event) -> Vec<String> {
    let mut t: Vec<String> = set.evaluate(e).into_iter().map(|m| m.rule_title).collect();
    t.sort();
    t
}

const RULES: &str = r"
title: Whoami Process
logsource: {product: windows, category: process_creation}
detection:
    selection: {CommandLine|contains: whoami}
    condition: selection
---
title: Whoami in Security Log
logsource: {product: windows, service: security}
detection:
    selection: {CommandLine|contains: whoami}
    condition: selection
---
title: Whoami on Linux
logsource: {product: linux, category: process_creation}
detection:
    selection: {CommandLine|contains: whoami}
    condition: selection
---
title: Whoami Anywhere On Windows
logsource: {product: windows}
detection:
    selection: {CommandLine|contains: whoami}
    condition: selection
";

#[test]
fn event_id_collisions_do_not_cross_channels() {
    let (set, report) = RuleSet::load([("rules.yml", RULES)]);
    assert_eq!(report.loaded.len(), 4, "{:?}", report.rejected);
    let data = json!({"CommandLine": "cmd /c whoami"});

    // Sysmon 1 is a process creation.
    assert_eq!(
        titles(&set, &windows("Microsoft-Windows-Sysmon/Operational", 1, data.clone())),
        ["Whoami Anywhere On Windows", "Whoami Process"]
    );
    // Security 4688 is a process creation too, and in the Security log.
    assert_eq!(
        titles(&set, &windows("Security", 4688, data.clone())),
        ["Whoami Anywhere On Windows", "Whoami Process", "Whoami in Security Log"]
    );
    // EventID 1 on another channel is not a process creation.
    assert_eq!(
        titles(&set, &windows("Microsoft-Windows-Kernel-General", 1, data.clone())),
        ["Whoami Anywhere On Windows"]
    );
    // Sysmon 11 (file creation) with the same fields is not either.
    assert_eq!(
        titles(&set, &windows("Microsoft-Windows-Sysmon/Operational", 11, data.clone())),
        ["Whoami Anywhere On Windows"]
    );

    // A Linux event sees only the Linux rule.
    let Value::Object(map) = json!({"CommandLine": "whoami", "type": "EXECVE"}) else {
        unreachable!()
    };
    let linux = Event::new(Format::Auditd, Timestamp::UNIX_EPOCH, Timestamp::UNIX_EPOCH, map);
    assert_eq!(titles(&set, &linux), ["Whoami on Linux"]);
}

fn other(format: Format, data: Value) -> Event {
    let Value::Object(map) = data else { unreachable!() };
    Event::new(format, Timestamp::UNIX_EPOCH, Timestamp::UNIX_EPOCH, map)
}

const NETWORK_RULES: &str = r"
title: Zeek DNS To Evil
logsource: {product: zeek, service: dns}
detection:
    selection: {query|endswith: '.evil.example'}
    condition: selection
---
title: Any DNS To Evil
logsource: {category: dns}
detection:
    selection: {query|endswith: '.evil.example'}
    condition: selection
---
title: Linux Whoami By Image
logsource: {product: linux, category: process_creation}
detection:
    selection: {Image|endswith: '/whoami'}
    condition: selection
---
title: Sudo Failure
logsource: {product: linux, service: sudo}
detection:
    keywords: ['authentication failure']
    condition: keywords
";

#[test]
fn non_windows_rules_see_only_their_sources_with_sigma_names_for_normalized_fields() {
    let (set, report) = RuleSet::load([("net.yml", NETWORK_RULES)]);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let dns = other(Format::ZeekJson, json!({"_path": "dns", "query": "c2.evil.example"}));
    assert_eq!(titles(&set, &dns), ["Any DNS To Evil", "Zeek DNS To Evil"]);
    // The same field in a Zeek log of another service: not a DNS rule's business.
    let http = other(Format::ZeekJson, json!({"_path": "http", "query": "c2.evil.example"}));
    assert!(titles(&set, &http).is_empty());
    // Suricata's DNS events are DNS for the generic category, not for Zeek's rules.
    let eve = other(
        Format::SuricataEve,
        json!({"event_type": "dns", "query": "c2.evil.example"}),
    );
    assert_eq!(titles(&set, &eve), ["Any DNS To Evil"]);
    // An auditd execution is a Linux process creation, named as Sigma names it.
    let mut exec = other(Format::Auditd, json!({"type": "SYSCALL", "exe": "/usr/bin/whoami"}));
    exec.normalized.process = Some("/usr/bin/whoami".into());
    assert_eq!(titles(&set, &exec), ["Linux Whoami By Image"]);
    // Sudo's log line in syslog; the same words in a Zeek log do not fire.
    let sudo = other(
        Format::Syslog3164,
        json!({"app_name": "sudo", "message": "pam_unix(sudo:auth): authentication failure; user=bob"}),
    );
    assert_eq!(titles(&set, &sudo), ["Sudo Failure"]);
    let zeek = other(
        Format::ZeekJson,
        json!({"_path": "notice", "msg": "authentication failure"}),
    );
    assert!(titles(&set, &zeek).is_empty());
}

/// A Windows rule whose logsource names no event log Rempart reads (the kernel's `file_access`
/// ETW events, an unknown service) is rejected, naming the logsource, instead of being let
/// loose on every Windows event, where its `EventID` alone fired on unrelated events.
#[test]
fn a_logsource_with_no_event_log_is_rejected_by_name_not_widened() {
    let rules = "
title: File Access
logsource: {product: windows, category: file_access}
detection:
    selection: {EventID: 1007}
    condition: selection
---
title: Unknown Service
logsource: {product: windows, service: no-such-service}
detection:
    selection: {EventID: 1007}
    condition: selection
---
title: Sysmon Error
logsource: {product: windows, category: sysmon_error}
detection:
    selection: {EventID: 255}
    condition: selection
---
title: IIS Configuration
logsource: {product: windows, service: iis-configuration}
detection:
    selection: {EventID: 29}
    condition: selection
";
    let (set, report) = RuleSet::load([("rules.yml", rules)]);
    let rejected: Vec<(&str, &str)> = report
        .rejected
        .iter()
        .map(|r| (r.title.as_deref().unwrap_or_default(), r.reason.as_str()))
        .collect();
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert!(
        rejected[0].0 == "File Access" && rejected[0].1.contains("category `file_access`"),
        "{rejected:?}"
    );
    assert!(
        rejected[1].0 == "Unknown Service" && rejected[1].1.contains("service `no-such-service`"),
        "{rejected:?}"
    );
    let application = windows("Application", 1007, json!({}));
    assert!(
        titles(&set, &application).is_empty(),
        "nothing fires on an unrelated event"
    );
    assert_eq!(
        titles(&set, &windows("Microsoft-Windows-Sysmon/Operational", 255, json!({}))),
        ["Sysmon Error"]
    );
    assert_eq!(
        titles(&set, &windows("Microsoft-IIS-Configuration/Operational", 29, json!({}))),
        ["IIS Configuration"]
    );
    assert!(titles(&set, &windows("Application", 29, json!({}))).is_empty());
}

/// `?` and `*` inside a value keep their meaning under `startswith`, `endswith` and `contains`
/// (the Sigma specification's wildcards), and `\` escapes them.
#[test]
fn wildcards_inside_modified_values_are_wildcards() {
    let rules = r"
title: Starts
logsource: {product: windows, category: process_creation}
detection:
    selection: {CommandLine|startswith: 'net?user *add'}
    condition: selection
---
title: Ends
logsource: {product: windows, category: process_creation}
detection:
    selection: {CommandLine|endswith: '.e?e'}
    condition: selection
---
title: Contains
logsource: {product: windows, category: process_creation}
detection:
    selection: {CommandLine|contains: 'pass*word'}
    condition: selection
---
title: Escaped
logsource: {product: windows, category: process_creation}
detection:
    selection: {CommandLine|endswith: 'really\?'}
    condition: selection
";
    let (set, report) = RuleSet::load([("rules.yml", rules)]);
    assert_eq!(report.loaded.len(), 4, "{:?}", report.rejected);
    let sysmon = |cmd: &str| windows("Microsoft-Windows-Sysmon/Operational", 1, json!({"CommandLine": cmd}));
    assert_eq!(titles(&set, &sysmon("net user bob /add")), ["Starts"]);
    assert_eq!(titles(&set, &sysmon("netXuser bob /add then")), ["Starts"]);
    assert_eq!(titles(&set, &sysmon("run m.exe")), ["Ends"]);
    assert_eq!(titles(&set, &sysmon("set pass_and_word")), ["Contains"]);
    assert_eq!(titles(&set, &sysmon("is it really?")), ["Escaped"]);
    assert!(
        titles(&set, &sysmon("is it reallyX")).is_empty(),
        "an escaped ? is literal"
    );
    assert!(titles(&set, &sysmon("net user bob")).is_empty());
}
