//! The event as Sigma rules see it.
//!
//! Sigma rules for Windows name event data fields bare (`Image`, `CommandLine`) next to the
//! system fields `EventID`, `Channel`, `Provider_Name` and `Computer`. Windows exports nest
//! them (`Event.EventData.Image`, `winlog.event_data.Image`, `event_data.Image`), so the view
//! lifts them to the top level, over a copy of the original fields (which stay reachable by
//! their dotted paths). Other formats are seen through their original fields.

use rempart_model::{Event, Format};
use serde_json::{Map, Value};

/// A JSON object holding the fields a Sigma rule may name for `event`.
pub fn sigma_view(event: &Event) -> Value {
    let mut view = event.fields.clone();
    match event.format {
        Format::Evtx | Format::WindowsJson => lift_windows(&event.fields, &mut view),
        _ => add_normalized(event, &mut view),
    }
    Value::Object(view)
}

/// Other formats gain Sigma's names for what normalization found, where their own fields do not
/// already use them: a Linux `process_creation` rule (`Image`, `CommandLine`, `ParentImage`,
/// `User`) then sees an auditd execution.
fn add_normalized(event: &Event, view: &mut Map<String, Value>) {
    let n = &event.normalized;
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v
            && !view.contains_key(k)
        {
            view.insert(k.to_owned(), v);
        }
    };
    let s = |v: &Option<String>| v.as_ref().map(|x| Value::String(x.clone()));
    put("Image", s(&n.process));
    put("CommandLine", s(&n.command_line));
    put("ParentImage", s(&n.parent_process));
    put("ParentCommandLine", s(&n.parent_command_line));
    put("User", s(&n.user));
    put("ProcessId", n.process_id.map(Value::from));
    put("ParentProcessId", n.parent_process_id.map(Value::from));
    put("SourceIp", n.src_ip.map(|i| Value::String(i.to_string())));
    put("DestinationIp", n.dst_ip.map(|i| Value::String(i.to_string())));
    put("SourcePort", n.src_port.map(Value::from));
    put("DestinationPort", n.dst_port.map(Value::from));
    put("Hostname", s(&n.host));
}

fn lift_windows(fields: &Map<String, Value>, view: &mut Map<String, Value>) {
    if let Some(Value::Object(ev)) = fields.get("Event") {
        if let Some(Value::Object(sys)) = ev.get("System") {
            let attr = |k: &str, name: &str| sys.get(k)?.get("#attributes")?.get(name).cloned();
            if let Some(id) = sys.get("EventID") {
                view.insert("EventID".into(), id.get("#text").cloned().unwrap_or_else(|| id.clone()));
            }
            for key in [
                "Channel",
                "Computer",
                "Level",
                "Task",
                "Opcode",
                "Keywords",
                "EventRecordID",
                "Version",
            ] {
                if let Some(v) = sys.get(key) {
                    view.insert(key.into(), v.clone());
                }
            }
            if let Some(name) = attr("Provider", "Name") {
                view.insert("Provider_Name".into(), name);
            }
            if let Some(guid) = attr("Provider", "Guid") {
                view.insert("Provider_Guid".into(), guid);
            }
        }
        for section in ["EventData", "UserData"] {
            if let Some(Value::Object(data)) = ev.get(section) {
                let data = if section == "UserData" {
                    data.values().find_map(Value::as_object).unwrap_or(data)
                } else {
                    data
                };
                lift(data, view);
            }
        }
        return;
    }
    // Winlogbeat 7 nests the system fields under `winlog`; Winlogbeat 6 keeps them at the top.
    let beat = match fields.get("winlog") {
        Some(Value::Object(winlog)) => Some((winlog, "channel", "provider_name")),
        _ if fields.contains_key("event_id") => Some((fields, "log_name", "source_name")),
        _ => None,
    };
    if let Some((system, channel, provider)) = beat {
        for (from, to) in [
            ("event_id", "EventID"),
            (channel, "Channel"),
            (provider, "Provider_Name"),
            ("computer_name", "Computer"),
        ] {
            if let Some(v) = system.get(from) {
                view.insert(to.into(), v.clone());
            }
        }
        if let Some(Value::Object(data)) = system.get("event_data") {
            lift(data, view);
        }
        return;
    }
    // Flat exports already carry the data fields at the top level.
    for (from, to) in [("SourceName", "Provider_Name"), ("Hostname", "Computer")] {
        if !view.contains_key(to)
            && let Some(v) = fields.get(from)
        {
            view.insert(to.into(), v.clone());
        }
    }
}

/// Copies `data` to the top level (names with spaces also without them); `Data` arrays of `{"Name": …, "#text": …}` become named
/// fields.
fn lift(data: &Map<String, Value>, view: &mut Map<String, Value>) {
    for (k, v) in data {
        if k == "Data"
            && let Value::Array(items) = v
        {
            for item in items {
                if let (Some(name), Some(text)) = (
                    item.get("#attributes")
                        .and_then(|a| a.get("Name"))
                        .and_then(Value::as_str),
                    item.get("#text"),
                ) {
                    view.insert(name.to_owned(), text.clone());
                }
            }
            continue;
        }
        if k == "#attributes" {
            continue;
        }
        // Defender and some other providers name data fields with spaces ("Threat Name");
        // Sigma rules use them without ("ThreatName").
        if k.contains(' ') {
            view.entry(k.replace(' ', "")).or_insert_with(|| v.clone());
        }
        view.insert(k.clone(), v.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use serde_json::json;

    fn event(format: Format, fields: Value) -> Event {
        let Value::Object(map) = fields else {
            panic!("fixture must be an object")
        };
        Event::new(format, Timestamp::UNIX_EPOCH, Timestamp::UNIX_EPOCH, map)
    }

    fn lifted(v: &Value) -> (Value, Value, Value, Value) {
        (
            v["EventID"].clone(),
            v["Channel"].clone(),
            v["Provider_Name"].clone(),
            v["Image"].clone(),
        )
    }

    #[test]
    fn every_windows_shape_lifts_the_same_sigma_fields() {
        let want = (
            json!(1),
            json!("Microsoft-Windows-Sysmon/Operational"),
            json!("Microsoft-Windows-Sysmon"),
            json!("C:\\x.exe"),
        );
        let dump = event(
            Format::Evtx,
            json!({"Event": {"System": {"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational",
            "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}}}, "EventData": {"Image": "C:\\x.exe"}}}),
        );
        let beat7 = event(
            Format::WindowsJson,
            json!({"winlog": {"event_id": 1, "channel": "Microsoft-Windows-Sysmon/Operational",
            "provider_name": "Microsoft-Windows-Sysmon", "event_data": {"Image": "C:\\x.exe"}}}),
        );
        let beat6 = event(
            Format::WindowsJson,
            json!({"event_id": 1, "log_name": "Microsoft-Windows-Sysmon/Operational",
            "source_name": "Microsoft-Windows-Sysmon", "event_data": {"Image": "C:\\x.exe"}}),
        );
        let flat = event(
            Format::WindowsJson,
            json!({"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational",
            "SourceName": "Microsoft-Windows-Sysmon", "Image": "C:\\x.exe"}),
        );
        for e in [dump, beat7, beat6, flat] {
            assert_eq!(lifted(&sigma_view(&e)), want, "{:?}", e.fields);
        }
    }

    #[test]
    fn spaced_names_gain_a_spaceless_twin_and_data_arrays_are_named() {
        let e = event(
            Format::Evtx,
            json!({"Event": {"System": {"EventID": 1119}, "EventData": {
            "Threat Name": "Virus:DOS/EICAR_Test_File",
            "Data": [{"#attributes": {"Name": "Param1"}, "#text": "v1"}]}}}),
        );
        let v = sigma_view(&e);
        assert_eq!(v["ThreatName"], "Virus:DOS/EICAR_Test_File");
        assert_eq!(v["Threat Name"], "Virus:DOS/EICAR_Test_File");
        assert_eq!(v["Param1"], "v1");
    }
}
