//! The event as Sigma rules see it.
//!
//! Sigma rules for Windows name event data fields bare (`Image`, `CommandLine`) next to the
//! system fields `EventID`, `Channel`, `Provider_Name` and `Computer`. Windows exports nest
//! them (`Event.EventData.Image`, `winlog.event_data.Image`, `event_data.Image`), so the view
//! lifts them to the top level, over a copy of the original fields (which stay reachable by
//! their dotted paths). Other formats are seen through their original fields.

use std::borrow::Cow;
use std::cell::OnceCell;

use indexmap::IndexMap;
use rempart_model::{Event, Format};
use rsigma_eval::event::{Event as SigmaEvent, EventValue, JsonEvent};
use serde_json::{Map, Value};

/// A JSON object holding the fields a Sigma rule may name for `event` (a copy; detection uses
/// the borrowed [`SigmaView`], which answers the same).
pub fn sigma_view(event: &Event) -> Value {
    SigmaView::new(event).materialize()
}

/// The event as Sigma rules see it, without copying it: Sigma's names for what the record
/// nests or normalization found (the overlay), looked up before the record's own fields.
///
/// It answers every question a rule may ask exactly as the copy [`sigma_view`] would: lifted
/// Windows fields replace top-level fields of the same name, names from normalization and
/// spaceless twins only fill in for absent ones, and dotted paths (rare in rules) are answered
/// from the copy, made once on first need.
#[derive(Debug)]
pub struct SigmaView<'a> {
    fields: &'a Map<String, Value>,
    overlay: Overlay<'a>,
    copy: OnceCell<JsonEvent<'static>>,
}

/// The names the view sets over the record, one entry per name, in the order first set.
#[derive(Debug)]
struct Overlay<'a> {
    fields: &'a Map<String, Value>,
    entries: IndexMap<Cow<'a, str>, Cow<'a, Value>, foldhash::fast::RandomState>,
}

impl<'a> Overlay<'a> {
    /// Room for `capacity` names without growing.
    fn new(fields: &'a Map<String, Value>, capacity: usize) -> Overlay<'a> {
        Overlay {
            fields,
            entries: IndexMap::with_capacity_and_hasher(capacity, Default::default()),
        }
    }

    /// Sets `key`, over the record's field and any earlier entry of that name.
    fn insert(&mut self, key: impl Into<Cow<'a, str>>, value: Cow<'a, Value>) {
        self.entries.insert(key.into(), value);
    }

    /// Sets `key` only if neither the record nor the overlay has it.
    fn fill(&mut self, key: impl Into<Cow<'a, str>>, value: Cow<'a, Value>) {
        let key = key.into();
        if !self.fields.contains_key(key.as_ref()) {
            self.entries.entry(key).or_insert(value);
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.entries.get(key).map(AsRef::as_ref)
    }

    /// The value of `key` as the view sees it (the overlay's, else the record's), borrowed
    /// from the record where it can be.
    fn lookup(&self, key: &str) -> Option<Cow<'a, Value>> {
        self.entries
            .get(key)
            .cloned()
            .or_else(|| self.fields.get(key).map(Cow::Borrowed))
    }

    /// Sets `key` if the view has no value of that name yet.
    fn add(&mut self, key: &'static str, value: Cow<'a, Value>) {
        if !self.fields.contains_key(key) {
            self.entries.entry(Cow::Borrowed(key)).or_insert(value);
        }
    }

    fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    fn iter(&self) -> impl Iterator<Item = (&Cow<'a, str>, &Cow<'a, Value>)> {
        self.entries.iter()
    }
}

impl<'a> SigmaView<'a> {
    pub fn new(event: &'a Event) -> SigmaView<'a> {
        let mut overlay;
        match event.format {
            Format::Evtx | Format::WindowsJson => {
                // The system fields and a typical event's data.
                overlay = Overlay::new(&event.fields, 48);
                lift_windows(&event.fields, &mut overlay);
                audit::map(&mut overlay);
            }
            _ => {
                overlay = Overlay::new(&event.fields, 12);
                add_normalized(event, &mut overlay);
            }
        }
        SigmaView {
            fields: &event.fields,
            overlay,
            copy: OnceCell::new(),
        }
    }

    /// The value of a top-level name, as a rule sees it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.overlay.get(key).or_else(|| self.fields.get(key))
    }

    fn shadowed(&self, key: &str) -> bool {
        self.overlay.contains(key)
    }

    /// Every top-level value, each name once.
    fn values(&self) -> impl Iterator<Item = &Value> {
        self.entries().map(|(_, v)| v)
    }

    /// Every top-level name with its value, each name once.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.fields
            .iter()
            .filter(|(k, _)| !self.shadowed(k))
            .map(|(k, v)| (k.as_str(), v))
            .chain(self.overlay.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
    }

    /// Every value a rule can read, each once where the view allows: the record's fields not
    /// shadowed by the view and the values the view made. What the view lifted is borrowed from
    /// inside the record (`Event`, `winlog`, `event_data` or a top-level system field), so it is
    /// already among the record's fields unless the field it came from is shadowed; only then
    /// are the lifted values given again. Used by the literal prefilter: a value left out here
    /// would be a match lost.
    pub(crate) fn scan_values(&self) -> impl Iterator<Item = &Value> {
        const LIFTED_FROM: [&str; 9] = [
            "Event",
            "winlog",
            "event_data",
            "event_id",
            "log_name",
            "source_name",
            "computer_name",
            "SourceName",
            "Hostname",
        ];
        let roots_shadowed = LIFTED_FROM.iter().any(|k| self.shadowed(k));
        self.fields
            .iter()
            .filter(|(k, _)| !self.shadowed(k))
            .map(|(_, v)| v)
            .chain(self.overlay.iter().filter_map(move |(_, v)| match v {
                Cow::Owned(v) => Some(v),
                Cow::Borrowed(v) => roots_shadowed.then_some(*v),
            }))
    }

    /// The copy: the record's fields with the overlay applied.
    pub fn materialize(&self) -> Value {
        let mut view = self.fields.clone();
        for (k, v) in self.overlay.iter() {
            view.insert(k.to_string(), v.as_ref().clone());
        }
        Value::Object(view)
    }
}

impl SigmaEvent for SigmaView<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        if let Some(v) = self.get(path) {
            return Some(EventValue::from(v));
        }
        if path.contains(['.', '[', '\\']) {
            return self
                .copy
                .get_or_init(|| JsonEvent::owned(self.materialize()))
                .get_field(path);
        }
        None
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.values().any(|v| JsonEvent::borrow(v).any_string_value(pred))
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        let mut out = Vec::new();
        self.visit_string_values(&mut |s| out.push(Cow::Owned(s.to_owned())));
        out
    }

    fn visit_string_values(&self, visit: &mut dyn FnMut(&str)) {
        for v in self.values() {
            match v {
                Value::String(s) => visit(s),
                _ => JsonEvent::borrow(v).visit_string_values(visit),
            }
        }
    }

    fn to_json(&self) -> Value {
        self.materialize()
    }

    fn top_level_keys(&self) -> Option<Vec<Cow<'_, str>>> {
        let mut keys = Vec::new();
        self.visit_top_level_keys(&mut |k| keys.push(Cow::Owned(k.to_owned())));
        Some(keys)
    }

    fn visit_top_level_keys(&self, visit: &mut dyn FnMut(&str)) -> bool {
        for k in self.fields.keys() {
            if !self.shadowed(k) {
                visit(k);
            }
        }
        for (k, _) in self.overlay.iter() {
            visit(k);
        }
        true
    }
}

/// Windows' own audit events under the names SigmaHQ's rules use for the categories routed to
/// them (as pySigma's `windows-audit` pipeline and Hayabusa's field mapping define them): a
/// `process_creation` rule written for Sysmon event 1 then reads a Security 4688 record, a
/// `network_connection` rule a Security 5156. Values are rewritten where the two logs write
/// them differently (integrity levels as SIDs, process ids in hex, directions and protocols as
/// codes). The record's own fields stay as they are, under their own names.
mod audit {
    use std::borrow::Cow;

    use serde_json::Value;

    use super::Overlay;

    pub(super) fn map(o: &mut Overlay<'_>) {
        let channel = o.lookup("Channel");
        let Some(channel) = channel.as_deref().and_then(Value::as_str) else {
            return;
        };
        let id = o.lookup("EventID").as_deref().and_then(number);
        if channel.eq_ignore_ascii_case("Security") {
            match id {
                Some(4688) => process_creation(o),
                Some(4657) => registry(o),
                Some(5156) => network_connection(o),
                _ => {}
            }
        } else if channel.eq_ignore_ascii_case(crate::route::DEFENDER)
            && id.is_some_and(|i| crate::route::DEFENDER_DETECTIONS.contains(&i))
        {
            antivirus(o);
        }
    }

    /// A Defender detection under the names of SigmaHQ's `antivirus` rules: `Signature` is the
    /// threat's name, `Filename` the detected resource's path.
    fn antivirus(o: &mut Overlay<'_>) {
        for (from, to) in [("Threat Name", "Signature"), ("Path", "Filename")] {
            if let Some(v) = o.lookup(from) {
                o.add(to, v);
            }
        }
    }

    /// A number written as a JSON number, as decimal text or as `0x` hex text.
    fn number(v: &Value) -> Option<u64> {
        match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => match s.trim().strip_prefix("0x").or_else(|| s.trim().strip_prefix("0X")) {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => s.trim().parse().ok(),
            },
            _ => None,
        }
    }

    fn text<'v>(v: &'v Option<Cow<'_, Value>>) -> Option<&'v str> {
        v.as_deref()
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty() && *s != "-")
    }

    /// An account as Sysmon's `User` writes it (`DOMAIN\\user`), from a record's user and
    /// domain fields; `None` when the record names no user (empty or `-`).
    fn account(o: &Overlay<'_>, user: &str, domain: &str) -> Option<String> {
        let user = o.lookup(user);
        let user = text(&user)?;
        let domain = o.lookup(domain);
        Some(match text(&domain) {
            Some(d) => format!("{d}\\{user}"),
            None => user.to_owned(),
        })
    }

    /// The integrity level Sysmon names, from the mandatory label's SID.
    fn integrity_level(sid: &str) -> Option<&'static str> {
        Some(match sid.trim().to_ascii_uppercase().as_str() {
            "S-1-16-0" => "Untrusted",
            "S-1-16-4096" => "Low",
            "S-1-16-8192" | "S-1-16-8448" => "Medium",
            "S-1-16-12288" => "High",
            "S-1-16-16384" => "System",
            "S-1-16-20480" => "Protected",
            _ => return None,
        })
    }

    /// Security 4688: the new process is `NewProcessName` / `NewProcessId`, its parent
    /// `ParentProcessName` / `ProcessId`; its account the target's when the record names one
    /// (an elevated or other-user start), else the subject's.
    fn process_creation(o: &mut Overlay<'_>) {
        if let Some(image) = o.lookup("NewProcessName") {
            o.add("Image", image);
        }
        if let Some(parent) = o.lookup("ParentProcessName") {
            o.add("ParentImage", parent);
        }
        // 4688 calls the parent's id `ProcessId`: Sigma's `ProcessId` is the new process's.
        let parent_pid = o.lookup("ProcessId").as_deref().and_then(number);
        let pid = o.lookup("NewProcessId").as_deref().and_then(number);
        if let Some(pid) = pid {
            o.insert("ProcessId", Cow::Owned(Value::from(pid)));
        }
        if let Some(ppid) = parent_pid {
            o.add("ParentProcessId", Cow::Owned(Value::from(ppid)));
        }
        let label = o.lookup("MandatoryLabel");
        if let Some(level) = text(&label).and_then(integrity_level) {
            o.add("IntegrityLevel", Cow::Owned(Value::from(level)));
        }
        let user = account(o, "TargetUserName", "TargetDomainName")
            .or_else(|| account(o, "SubjectUserName", "SubjectDomainName"));
        if let Some(user) = user {
            o.add("User", Cow::Owned(Value::from(user)));
        }
        let target_logon = o.lookup("TargetLogonId");
        let logon = match target_logon.as_deref().and_then(number) {
            Some(n) if n != 0 => target_logon,
            _ => o.lookup("SubjectLogonId"),
        };
        if let Some(logon) = logon {
            o.add("LogonId", logon);
        }
    }

    /// Security 4657 (a registry value was set or deleted) as Sysmon's registry events write
    /// it: `TargetObject` is the value's path under `HKLM` or `HKU` (Windows writes
    /// `\REGISTRY\MACHINE`, `\REGISTRY\USER`), `Details` the new data as Sysmon shows it
    /// (`DWORD (0x00000001)`, `QWORD (0x00000000-0x00000001)`, `Binary Data`, `(Empty)`),
    /// `EventType` `SetValue` or `DeleteValue`, the process as `Image` and `ProcessId`.
    fn registry(o: &mut Overlay<'_>) {
        let object = o.lookup("ObjectName");
        if let Some(key) = text(&object) {
            let key = registry_root(key);
            let value = o.lookup("ObjectValueName");
            let value = text(&value).unwrap_or("(Default)");
            o.add("TargetObject", Cow::Owned(Value::from(format!("{key}\\{value}"))));
        }
        let operation = o.lookup("OperationType");
        let kind = match text(&operation) {
            Some("%%1904" | "%%1905") => Some("SetValue"),
            Some("%%1906") => Some("DeleteValue"),
            _ => None,
        };
        if let Some(kind) = kind {
            o.add("EventType", Cow::Owned(Value::from(kind)));
        }
        let (value_type, new) = (o.lookup("NewValueType"), o.lookup("NewValue"));
        if let Some(details) = registry_details(text(&value_type), new.as_deref()) {
            o.add("Details", Cow::Owned(Value::from(details)));
        }
        if let Some(image) = o.lookup("ProcessName") {
            o.add("Image", image);
        }
        // 4657's `ProcessId` is hex; Sysmon's (and the rules') decimal.
        if let Some(pid) = o.lookup("ProcessId").as_deref().and_then(number) {
            o.insert("ProcessId", Cow::Owned(Value::from(pid)));
        }
        if let Some(user) = account(o, "SubjectUserName", "SubjectDomainName") {
            o.add("User", Cow::Owned(Value::from(user)));
        }
    }

    /// A registry path with Sysmon's root names.
    fn registry_root(key: &str) -> String {
        for (native, short) in [("\\REGISTRY\\MACHINE", "HKLM"), ("\\REGISTRY\\USER", "HKU")] {
            if key.len() >= native.len()
                && key.is_char_boundary(native.len())
                && key[..native.len()].eq_ignore_ascii_case(native)
            {
                return format!("{short}{}", &key[native.len()..]);
            }
        }
        key.to_owned()
    }

    /// Registry data as Sysmon shows it, from 4657's type code and value.
    fn registry_details(kind: Option<&str>, value: Option<&Value>) -> Option<String> {
        let text = match value? {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        let n = || number(&Value::String(text.clone()));
        Some(match kind {
            // REG_DWORD, REG_QWORD, REG_BINARY (the codes of msobjs.dll).
            Some("%%1876") => format!("DWORD (0x{:08x})", n()?),
            Some("%%1883") => {
                let q = n()?;
                format!("QWORD (0x{:08x}-0x{:08x})", q >> 32, q & 0xffff_ffff)
            }
            Some("%%1875") => "Binary Data".to_owned(),
            _ if text.is_empty() || text == "-" => "(Empty)".to_owned(),
            _ => text,
        })
    }

    /// Security 5156 (the filtering platform allowed a connection): addresses, ports, the
    /// application's path, the direction (`%%14593` outbound: `Initiated`) and the protocol
    /// number as Sysmon writes them.
    fn network_connection(o: &mut Overlay<'_>) {
        let application = o.lookup("Application");
        if let Some(path) = text(&application) {
            let image = drive_path(path).unwrap_or_else(|| path.to_owned());
            o.add("Image", Cow::Owned(Value::from(image)));
        }
        for (from, to) in [
            ("SourceAddress", "SourceIp"),
            ("DestAddress", "DestinationIp"),
            ("DestPort", "DestinationPort"),
        ] {
            if let Some(v) = o.lookup(from) {
                o.add(to, v);
            }
        }
        let direction = o.lookup("Direction");
        if let Some(d) = text(&direction) {
            let initiated = match d {
                "%%14593" => Some("true"),
                "%%14592" => Some("false"),
                _ => None,
            };
            if let Some(i) = initiated {
                o.add("Initiated", Cow::Owned(Value::from(i)));
            }
        }
        let protocol = o.lookup("Protocol");
        let name = match protocol.as_deref().and_then(number) {
            Some(6) => Some("tcp"),
            Some(17) => Some("udp"),
            Some(1) => Some("icmp"),
            Some(58) => Some("icmpv6"),
            _ => None,
        };
        if let Some(name) = name {
            o.insert("Protocol", Cow::Owned(Value::from(name)));
        }
    }

    /// A path the filtering platform writes in the kernel's form
    /// (`\device\harddiskvolume2\windows\system32\lsass.exe`) as the rules write it, on the
    /// system drive (`C:\windows\system32\lsass.exe`): the record does not say which letter
    /// the volume has, and the rules' paths name the system drive (Hayabusa's conversion of the
    /// same rules matches any volume number the same way). `None` for a path of another form.
    fn drive_path(path: &str) -> Option<String> {
        const VOLUME: &str = "\\device\\harddiskvolume";
        let head = path.get(..VOLUME.len())?;
        if !head.eq_ignore_ascii_case(VOLUME) {
            return None;
        }
        let rest = &path[VOLUME.len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let rest = &rest[digits..];
        (digits > 0 && rest.starts_with('\\')).then(|| format!("C:{rest}"))
    }
}

/// Other formats gain Sigma's names for what normalization found, where their own fields do not
/// already use them: a Linux `process_creation` rule (`Image`, `CommandLine`, `ParentImage`,
/// `User`) then sees an auditd execution.
fn add_normalized<'a>(event: &'a Event, o: &mut Overlay<'a>) {
    let n = &event.normalized;
    let mut put = |k: &'static str, v: Option<Value>| {
        if let Some(v) = v {
            o.fill(k, Cow::Owned(v));
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

fn lift_windows<'a>(fields: &'a Map<String, Value>, o: &mut Overlay<'a>) {
    if let Some(Value::Object(ev)) = fields.get("Event") {
        // Each section and system field is found by walking the record once: faster than
        // looking each name up, as every event does.
        let mut sections: [Option<&'a Map<String, Value>>; 2] = [None, None];
        for (section, value) in ev {
            match (section.as_str(), value) {
                ("System", Value::Object(sys)) => lift_system(sys, o),
                ("EventData", Value::Object(data)) => sections[0] = Some(data),
                ("UserData", Value::Object(data)) => {
                    sections[1] = Some(data.values().find_map(Value::as_object).unwrap_or(data));
                }
                _ => {}
            }
        }
        sections.into_iter().flatten().for_each(|data| lift(data, o));
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
                o.insert(to, Cow::Borrowed(v));
            }
        }
        if let Some(Value::Object(data)) = system.get("event_data") {
            lift(data, o);
        }
        return;
    }
    // Flat exports already carry the data fields at the top level.
    for (from, to) in [("SourceName", "Provider_Name"), ("Hostname", "Computer")] {
        if let Some(v) = fields.get(from) {
            o.fill(to, Cow::Borrowed(v));
        }
    }
}

/// Lifts the system fields Sigma names: `EventID` (its text when it has attributes), the
/// provider's name and GUID, and the others under their own names.
fn lift_system<'a>(sys: &'a Map<String, Value>, o: &mut Overlay<'a>) {
    for (key, v) in sys {
        match key.as_str() {
            "EventID" => o.insert("EventID", Cow::Borrowed(v.get("#text").unwrap_or(v))),
            "Channel" | "Computer" | "Level" | "Task" | "Opcode" | "Keywords" | "EventRecordID" | "Version" => {
                o.insert(key.as_str(), Cow::Borrowed(v));
            }
            "Provider" => {
                let attr = |name: &str| v.get("#attributes")?.get(name);
                if let Some(name) = attr("Name") {
                    o.insert("Provider_Name", Cow::Borrowed(name));
                }
                if let Some(guid) = attr("Guid") {
                    o.insert("Provider_Guid", Cow::Borrowed(guid));
                }
            }
            _ => {}
        }
    }
}

/// A value of Windows event data as rules compare it: text without the trailing blanks some
/// providers write (`LogonProcessName` is `NtLmSsp ` in a 4624 record, which SigmaHQ's
/// pass-the-hash rule compares with `NtLmSsp`), as Windows' own viewer shows it. The record keeps
/// its bytes, reachable by the field's dotted path.
fn trimmed(v: &Value) -> Cow<'_, Value> {
    match v {
        Value::String(s) if s.ends_with(|c: char| c.is_ascii_whitespace()) => Cow::Owned(Value::String(
            s.trim_end_matches(|c: char| c.is_ascii_whitespace()).to_owned(),
        )),
        _ => Cow::Borrowed(v),
    }
}

/// Lifts `data` to the top level (names with spaces also without them); `Data` arrays of
/// `{"Name": …, "#text": …}` become named fields.
fn lift<'a>(data: &'a Map<String, Value>, o: &mut Overlay<'a>) {
    for (k, v) in data {
        if k == "Data" {
            match v {
                Value::Array(items) => {
                    // Named items become fields; unnamed ones (plain strings) stay the field
                    // `Data` that rules over MSSQL, ESENT or installer events test.
                    let mut unnamed = Vec::new();
                    for item in items {
                        match (
                            item.get("#attributes")
                                .and_then(|a| a.get("Name"))
                                .and_then(Value::as_str),
                            item.get("#text"),
                        ) {
                            (Some(name), Some(text)) => o.insert(name, trimmed(text)),
                            (None, Some(text)) => unnamed.push(text.clone()),
                            (None, None) if !item.is_object() => unnamed.push(item.clone()),
                            _ => {}
                        }
                    }
                    if !unnamed.is_empty() {
                        o.insert("Data", Cow::Owned(Value::Array(unnamed)));
                    }
                    continue;
                }
                // `<Data>` elements without names: the evtx crate gathers their texts as
                // `{"#text": [...]}` (one text alone as `{"#text": "..."}`).
                Value::Object(data) if !data.contains_key("#attributes") => {
                    if let Some(text) = data.get("#text") {
                        o.insert("Data", Cow::Borrowed(text));
                        continue;
                    }
                }
                _ => {}
            }
        }
        if k == "#attributes" {
            continue;
        }
        // Defender and some other providers name data fields with spaces ("Threat Name");
        // Sigma rules use them without ("ThreatName").
        if k.contains(' ') {
            o.fill(k.replace(' ', ""), trimmed(v));
        }
        o.insert(k.as_str(), trimmed(v));
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
