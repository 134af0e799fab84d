//! Logsource routing: a rule applies only to events of its logsource.
//!
//! Windows event IDs collide across channels (EventID 1 is a Sysmon process creation and
//! also a dozen unrelated events elsewhere), so a Windows rule's `category` or `service` is
//! turned into the channels and event IDs it may see, as Sigma's Windows pipelines do. A rule
//! for another product never sees Windows events, and a Windows rule sees only Windows events.
//! Zeek rules see Zeek logs of their service (`_path`), Linux rules see auditd records (and,
//! for services such as `sshd` or `sudo`, syslog), and the generic network categories (`dns`,
//! `proxy`, `firewall`, `webserver`) see the sources that carry them.

use rempart_model::{Event, Format};

use crate::view::SigmaView;
use serde_json::Value;

const SYSMON: &str = "Microsoft-Windows-Sysmon/Operational";
const SECURITY: &str = "Security";
const POWERSHELL: &str = "Microsoft-Windows-PowerShell/Operational";
const POWERSHELL_CLASSIC: &str = "Windows PowerShell";
pub(crate) const DEFENDER: &str = "Microsoft-Windows-Windows Defender/Operational";
/// Defender's detections: malware found (1006, 1116), acted on (1007, 1117) or not (1008,
/// 1118, 1119), suspicious behaviour (1015).
pub(crate) const DEFENDER_DETECTIONS: &[u64] = &[1006, 1007, 1008, 1015, 1116, 1117, 1118, 1119];

/// Where a rule may look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Windows events on these (channel, event ids) pairs; empty ids means any id.
    Windows(Vec<(&'static str, &'static [u64])>),
    /// Windows events on a channel whose name starts with this prefix.
    WindowsChannelPrefix(&'static str),
    /// Any Windows event (a Windows logsource Rempart does not map more precisely).
    AnyWindows,
    /// Zeek logs, of one service (`dns`, `http`, …: the log's `_path`) or any.
    Zeek(Option<String>),
    /// Linux auditd records.
    Auditd,
    /// Syslog (a Linux service's log).
    Syslog,
    /// Sources of a generic category: these formats, and for Suricata these `event_type`s.
    Category(&'static [Format], &'static [&'static str]),
    /// Any event that is not a Windows event (network devices, cloud, applications, …).
    NotWindows,
    /// SigmaHQ's product-less `antivirus` category: Windows Defender's detections, and any
    /// other product's log (an antivirus's syslog or CEF).
    Antivirus,
}

/// The route of a rule's logsource.
pub fn route(product: Option<&str>, category: Option<&str>, service: Option<&str>) -> Route {
    let windows = match product {
        Some("windows") => true,
        Some("zeek") => return Route::Zeek(service.map(str::to_owned)),
        Some("linux") => {
            return match (service, category) {
                (Some("auditd"), _) | (None, Some(_)) => Route::Auditd,
                (Some(_), _) => Route::Syslog,
                (None, None) => Route::Category(&[Format::Auditd, Format::Syslog3164, Format::Syslog5424], &[]),
            };
        }
        Some(_) => return Route::NotWindows,
        None if category == Some("antivirus") => return Route::Antivirus,
        // Sysmon-style categories without a product are Windows in SigmaHQ.
        None => category.is_some_and(|c| windows_category(c).is_some()),
    };
    if !windows {
        return match category {
            Some("dns") => Route::Category(&[Format::ZeekJson, Format::ZeekTsv, Format::SuricataEve], &["dns"]),
            Some("proxy") => Route::Category(
                &[Format::ZeekJson, Format::ZeekTsv, Format::SuricataEve, Format::Json],
                &["http"],
            ),
            Some("firewall") => Route::Category(
                &[
                    Format::Cef,
                    Format::Syslog3164,
                    Format::Syslog5424,
                    Format::SuricataEve,
                    Format::ZeekJson,
                    Format::ZeekTsv,
                ],
                &["flow", "alert", "netflow"],
            ),
            Some("webserver") => Route::Category(&[Format::Syslog3164, Format::Syslog5424, Format::Json], &[]),
            _ => Route::NotWindows,
        };
    }
    if let Some(route) = category.and_then(windows_category) {
        return route;
    }
    if let Some(s) = service {
        return windows_service(s).unwrap_or(Route::AnyWindows);
    }
    Route::AnyWindows
}

/// Why a Windows rule's logsource cannot be routed, if it cannot: a category or a service that
/// names no event log Rempart reads (`file_access` and `file_rename` come from the kernel's ETW
/// providers, which write no channel). Such a rule is rejected with this reason rather than
/// let loose on every Windows event, where an `EventID` alone would fire on unrelated events.
pub fn unroutable(product: Option<&str>, category: Option<&str>, service: Option<&str>) -> Option<String> {
    let windows = match product {
        Some("windows") => true,
        None => category.is_some_and(|c| windows_category(c).is_some()),
        Some(_) => false,
    };
    if !windows {
        return None;
    }
    match (category, service) {
        (_, Some(s)) if category.and_then(windows_category).is_none() && windows_service(s).is_none() => Some(format!(
            "logsource service `{s}` names no Windows event log Rempart reads: routing it to every Windows event would fire on unrelated ones"
        )),
        (Some(c), None) if windows_category(c).is_none() => Some(format!(
            "logsource category `{c}` names no Windows event log Rempart reads (kernel ETW, no channel): routing it to every Windows event would fire on unrelated ones"
        )),
        _ => None,
    }
}

fn sysmon(ids: &'static [u64]) -> Route {
    Route::Windows(vec![(SYSMON, ids)])
}

fn windows_category(category: &str) -> Option<Route> {
    Some(match category {
        "process_creation" => Route::Windows(vec![(SYSMON, &[1]), (SECURITY, &[4688])]),
        "file_change" => sysmon(&[2]),
        "network_connection" => Route::Windows(vec![(SYSMON, &[3]), (SECURITY, &[5156])]),
        "sysmon_status" => sysmon(&[4, 16]),
        "process_termination" => Route::Windows(vec![(SYSMON, &[5]), (SECURITY, &[4689])]),
        "driver_load" => sysmon(&[6]),
        "image_load" => sysmon(&[7]),
        "create_remote_thread" => sysmon(&[8]),
        "raw_access_thread" | "raw_access_read" => sysmon(&[9]),
        "process_access" => sysmon(&[10]),
        "file_event" => sysmon(&[11]),
        "registry_add" => sysmon(&[12]),
        "registry_delete" => Route::Windows(vec![(SYSMON, &[12]), (SECURITY, &[4657])]),
        "registry_set" => Route::Windows(vec![(SYSMON, &[13]), (SECURITY, &[4657])]),
        "registry_rename" => sysmon(&[14]),
        "registry_event" => Route::Windows(vec![(SYSMON, &[12, 13, 14]), (SECURITY, &[4657])]),
        "create_stream_hash" => sysmon(&[15]),
        "pipe_created" => sysmon(&[17, 18]),
        "wmi_event" => sysmon(&[19, 20, 21]),
        "dns_query" => sysmon(&[22]),
        "file_delete" => sysmon(&[23, 26]),
        "clipboard_change" => sysmon(&[24]),
        "process_tampering" => sysmon(&[25]),
        "file_delete_detected" => sysmon(&[26]),
        "sysmon_error" => sysmon(&[255]),
        "file_block_executable" => sysmon(&[27]),
        "file_block_shredding" => sysmon(&[28]),
        "file_executable_detected" => sysmon(&[29]),
        "ps_module" => Route::Windows(vec![(POWERSHELL, &[4103])]),
        "ps_script" => Route::Windows(vec![(POWERSHELL, &[4104])]),
        "ps_classic_start" => Route::Windows(vec![(POWERSHELL_CLASSIC, &[400])]),
        "ps_classic_provider_start" => Route::Windows(vec![(POWERSHELL_CLASSIC, &[600])]),
        "ps_classic_script" => Route::Windows(vec![(POWERSHELL_CLASSIC, &[800])]),
        "antivirus" => Route::Windows(vec![(DEFENDER, DEFENDER_DETECTIONS)]),
        _ => return None,
    })
}

/// The channel of a Windows service name (as SigmaHQ's logsources and pySigma's Windows
/// pipeline name them); `None` for one Rempart does not know.
fn windows_service(service: &str) -> Option<Route> {
    let channel = |c: &'static str| Route::Windows(vec![(c, &[])]);
    Some(match service {
        "security" => channel(SECURITY),
        "system" => channel("System"),
        "application" => channel("Application"),
        "sysmon" => channel(SYSMON),
        "powershell" => channel(POWERSHELL),
        "powershell-classic" => channel(POWERSHELL_CLASSIC),
        "windefend" => channel(DEFENDER),
        "taskscheduler" => channel("Microsoft-Windows-TaskScheduler/Operational"),
        "wmi" => channel("Microsoft-Windows-WMI-Activity/Operational"),
        "dns-server" => channel("DNS Server"),
        "bits-client" => channel("Microsoft-Windows-Bits-Client/Operational"),
        "codeintegrity-operational" => channel("Microsoft-Windows-CodeIntegrity/Operational"),
        "firewall-as" => channel("Microsoft-Windows-Windows Firewall With Advanced Security/Firewall"),
        "terminalservices-localsessionmanager" => {
            channel("Microsoft-Windows-TerminalServices-LocalSessionManager/Operational")
        }
        "driver-framework" => channel("Microsoft-Windows-DriverFrameworks-UserMode/Operational"),
        "ntlm" => channel("Microsoft-Windows-NTLM/Operational"),
        "dns-client" => channel("Microsoft-Windows-DNS Client Events/Operational"),
        "msexchange-management" => channel("MSExchange Management"),
        "printservice-admin" => channel("Microsoft-Windows-PrintService/Admin"),
        "printservice-operational" => channel("Microsoft-Windows-PrintService/Operational"),
        "smbclient-security" => channel("Microsoft-Windows-SmbClient/Security"),
        "openssh" => channel("OpenSSH/Operational"),
        "shell-core" => channel("Microsoft-Windows-Shell-Core/Operational"),
        "appxdeployment-server" => channel("Microsoft-Windows-AppXDeploymentServer/Operational"),
        "capi2" => channel("Microsoft-Windows-CAPI2/Operational"),
        "lsa-server" => channel("Microsoft-Windows-LSA/Operational"),
        "applocker" => Route::WindowsChannelPrefix("Microsoft-Windows-AppLocker/"),
        "security-mitigations" => Route::WindowsChannelPrefix("Microsoft-Windows-Security-Mitigations"),
        "iis-configuration" => channel("Microsoft-IIS-Configuration/Operational"),
        "smbclient-connectivity" => channel("Microsoft-Windows-SmbClient/Connectivity"),
        "smbserver-connectivity" => channel("Microsoft-Windows-SMBServer/Connectivity"),
        "dns-server-analytic" => channel("Microsoft-Windows-DNS-Server/Analytical"),
        "appxpackaging-om" => channel("Microsoft-Windows-AppxPackaging/Operational"),
        "appmodel-runtime" => channel("Microsoft-Windows-AppModel-Runtime/Admin"),
        "microsoft-servicebus-client" => channel("Microsoft-ServiceBus-Client"),
        "certificateservicesclient-lifecycle-system" => {
            channel("Microsoft-Windows-CertificateServicesClient-Lifecycle-System/Operational")
        }
        "ldap" => channel("Microsoft-Windows-LDAP-Client/Debug"),
        "diagnosis-scripted" => channel("Microsoft-Windows-Diagnosis-Scripted/Operational"),
        _ => return None,
    })
}

fn is_windows(event: &Event) -> bool {
    matches!(event.format, Format::Evtx | Format::WindowsJson)
}

/// What routing reads of an event, read once per event for every route.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RouteKey<'v> {
    windows: bool,
    channel: Option<&'v str>,
    event_id: Option<u64>,
}

impl<'v> RouteKey<'v> {
    pub(crate) fn of(event: &Event, view: &'v SigmaView<'_>) -> RouteKey<'v> {
        let windows = is_windows(event);
        RouteKey {
            windows,
            channel: if windows { channel(view) } else { None },
            event_id: if windows { event_id(view) } else { None },
        }
    }
}

impl Route {
    /// Whether an event, seen through its Sigma view (its channel and event id read once into
    /// `key`), is on this route.
    pub(crate) fn admits(&self, event: &Event, view: &SigmaView<'_>, key: RouteKey<'_>) -> bool {
        match self {
            Route::NotWindows => !key.windows,
            Route::Auditd => event.format == Format::Auditd,
            Route::Syslog => matches!(event.format, Format::Syslog3164 | Format::Syslog5424),
            Route::Zeek(service) => {
                matches!(event.format, Format::ZeekJson | Format::ZeekTsv)
                    && service.as_deref().is_none_or(|s| {
                        // A log without its path (plain Zeek JSON) cannot be told apart: admitted.
                        view.get("_path").and_then(Value::as_str).is_none_or(|p| p == s)
                    })
            }
            Route::Category(formats, suricata_types) => {
                formats.contains(&event.format)
                    && match event.format {
                        Format::SuricataEve => view
                            .get("event_type")
                            .and_then(Value::as_str)
                            .is_some_and(|t| suricata_types.contains(&t)),
                        Format::ZeekJson | Format::ZeekTsv if !suricata_types.is_empty() => {
                            view.get("_path").and_then(Value::as_str).is_none_or(|p| {
                                suricata_types.contains(&p) || (p == "conn" && suricata_types.contains(&"flow"))
                            })
                        }
                        _ => true,
                    }
            }
            Route::AnyWindows => key.windows,
            Route::WindowsChannelPrefix(prefix) => key.windows && key.channel.is_some_and(|c| c.starts_with(prefix)),
            Route::Windows(pairs) => key.on(pairs),
            Route::Antivirus => !key.windows || key.on(&[(DEFENDER, DEFENDER_DETECTIONS)]),
        }
    }
}

impl RouteKey<'_> {
    /// Whether a Windows event is on one of these (channel, event ids) pairs (no ids: any).
    fn on(&self, pairs: &[(&str, &[u64])]) -> bool {
        let (true, Some(ch), id) = (self.windows, self.channel, self.event_id) else {
            return false;
        };
        pairs
            .iter()
            .any(|(c, ids)| c.eq_ignore_ascii_case(ch) && (ids.is_empty() || id.is_some_and(|i| ids.contains(&i))))
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let formats = |f: &mut std::fmt::Formatter<'_>, formats: &[Format]| {
            let names: Vec<&str> = formats.iter().map(|x| x.as_str()).collect();
            write!(f, "{}", names.join(", "))
        };
        match self {
            Route::Windows(pairs) => {
                f.write_str("Windows events: ")?;
                for (n, (channel, ids)) in pairs.iter().enumerate() {
                    if n > 0 {
                        f.write_str("; ")?;
                    }
                    match ids {
                        [] => write!(f, "{channel}, any event id")?,
                        ids => {
                            let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
                            write!(f, "{channel} {}", ids.join(", "))?;
                        }
                    }
                }
                Ok(())
            }
            Route::WindowsChannelPrefix(prefix) => write!(f, "Windows events of channels {prefix}*"),
            Route::AnyWindows => f.write_str("any Windows event"),
            Route::Zeek(Some(service)) => write!(f, "Zeek {service} logs"),
            Route::Zeek(None) => f.write_str("Zeek logs"),
            Route::Auditd => f.write_str("Linux auditd records"),
            Route::Syslog => f.write_str("syslog"),
            Route::Category(fs, []) => formats(f, fs),
            Route::Category(fs, kinds) => {
                formats(f, fs)?;
                write!(f, " (Suricata event types and Zeek logs: {})", kinds.join(", "))
            }
            Route::NotWindows => f.write_str("any event that is not a Windows event"),
            Route::Antivirus => write!(
                f,
                "Windows Defender detections ({DEFENDER} {}) and any event that is not a Windows event",
                DEFENDER_DETECTIONS
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// An event's source as routing reads it: its format, and a Windows event's channel and id.
pub(crate) fn describe(event: &Event, key: RouteKey<'_>) -> String {
    if !key.windows {
        return event.format.as_str().to_owned();
    }
    let channel = key.channel.unwrap_or("no channel");
    match key.event_id {
        Some(id) => format!("Windows event: {channel} {id}"),
        None => format!("Windows event: {channel}, no event id"),
    }
}

fn channel<'v>(view: &'v SigmaView<'_>) -> Option<&'v str> {
    view.get("Channel").and_then(Value::as_str)
}

fn event_id(view: &SigmaView<'_>) -> Option<u64> {
    match view.get("EventID")? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}
