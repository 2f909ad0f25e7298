//! The validated plan: what the rest of the workspace consumes.
//!
//! Everything here has already passed every rule of the plan format that does not need the
//! dependency graph. Variables are substituted, host groups are expanded (with duplicates
//! removed in first-seen order), and plan-wide defaults are applied, remembering where each
//! effective value came from so `plan show` can say "inherited from [plan]".
//!
//! Spans are kept as [`Span`] (a file id plus a byte range) rather than `toml::Spanned`, so
//! the model is independent of the TOML library and diagnostics can point into included files.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use miette::{NamedSource, SourceSpan};

/// Identifies one file of a plan: the main file is always `FileId(0)`, includes follow in the
/// order they were first read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(pub u32);

impl FileId {
    /// The plan file itself (as opposed to an included file).
    pub const MAIN: FileId = FileId(0);
}

/// A byte range in one file of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    /// Which file the range is in.
    pub file: FileId,
    /// Byte offset of the first byte.
    pub start: usize,
    /// Length in bytes (may be 0 for a point).
    pub len: usize,
}

impl Span {
    /// A span in `file` covering `range`.
    pub fn new(file: FileId, range: std::ops::Range<usize>) -> Self {
        Span {
            file,
            start: range.start,
            len: range.end.saturating_sub(range.start),
        }
    }

    /// The span as miette wants it (the file is carried separately by the diagnostic).
    pub fn source_span(self) -> SourceSpan {
        SourceSpan::new(self.start.into(), self.len)
    }
}

impl From<Span> for SourceSpan {
    fn from(span: Span) -> Self {
        span.source_span()
    }
}

/// One source file of a plan: its display name (as given on the command line or resolved
/// relative to the including file) and its full text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The name diagnostics print (a path as the user would recognise it).
    pub name: String,
    /// The file's text, shared with every diagnostic that points into it.
    pub text: Arc<str>,
    /// Byte offset of the start of each line, so locating a diagnostic does not rescan the
    /// file (a plan with thousands of warnings would otherwise be quadratic to print). Built
    /// on the first lookup: checking a valid plan never needs it.
    line_starts: Arc<OnceLock<Box<[usize]>>>,
}

impl SourceFile {
    fn line_starts(&self) -> &[usize] {
        self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(
                    self.text
                        .bytes()
                        .enumerate()
                        .filter(|&(_, b)| b == b'\n')
                        .map(|(i, _)| i + 1),
                )
                .collect()
        })
    }
}

/// All files a plan was read from, indexed by [`FileId`].
#[derive(Debug, Clone, Default)]
pub struct SourceFiles {
    files: Vec<SourceFile>,
}

impl SourceFiles {
    /// Adds a file and returns its id.
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<Arc<str>>) -> FileId {
        let id = FileId(u32::try_from(self.files.len()).unwrap_or(u32::MAX));
        self.files.push(SourceFile {
            name: name.into(),
            text: text.into(),
            line_starts: Arc::default(),
        });
        id
    }

    /// The file with this id.
    ///
    /// # Panics
    /// When the id was not handed out by this table (a programming error).
    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    /// How many files the table holds.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True when no file was added yet.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The file with this id, or `None` when the id is not from this table.
    pub fn try_get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }

    /// All files in id order.
    pub fn iter(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(u32::try_from(i).unwrap_or(u32::MAX)), f))
    }

    /// A miette source for diagnostics labelled in `id`.
    pub fn named_source(&self, id: FileId) -> NamedSource<Arc<str>> {
        let file = self.get(id);
        NamedSource::new(file.name.clone(), Arc::clone(&file.text)).with_language("toml")
    }

    /// 1-based line and column (in characters) of a byte offset in `id`.
    pub fn line_col(&self, id: FileId, offset: usize) -> (usize, usize) {
        let file = self.get(id);
        let text = &file.text;
        let offset = floor_char_boundary(text, offset.min(text.len()));
        // The last line start at or before the offset (there is always one: 0).
        let line_starts = file.line_starts();
        let line_index = line_starts
            .partition_point(|&start| start <= offset)
            .saturating_sub(1);
        let line_start = line_starts.get(line_index).copied().unwrap_or(0);
        let before = &text[line_start..offset];
        // A byte order mark opening the file is no column: editors do not show it.
        let before = match line_start {
            0 => before.strip_prefix('\u{FEFF}').unwrap_or(before),
            _ => before,
        };
        let column = before.chars().count() + 1;
        (line_index + 1, column)
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// A value together with the span it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    /// The value (after variable substitution for strings).
    pub value: T,
    /// Where it is written.
    pub span: Span,
}

/// Which BK-JOB API family a plan's requests use: JOB's own [`ApiVersion`] (`"v2"`, the
/// default, or `"v3"`).
pub use plan_bkjob::ApiVersion;

/// JOB's `bk_scope_type`: a business (`biz`) or a business set (`biz_set`).
pub use plan_bkjob::ScopeType;

/// The former name of [`ApiVersion`], the same type; kept while the last users move over.
pub use plan_bkjob::ApiVersion as Api;

/// v3 `transfer_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TransferMode {
    /// Missing target directories are created (JOB's default, `transfer_mode = 2`).
    Force,
    /// The push fails on hosts where the target directory is missing (`transfer_mode = 1`).
    Strict,
}

impl TransferMode {
    /// The number JOB's v3 API uses.
    pub fn code(self) -> i32 {
        match self {
            TransferMode::Strict => 1,
            TransferMode::Force => 2,
        }
    }

    /// `"force"` or `"strict"`, as written in plans.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferMode::Force => "force",
            TransferMode::Strict => "strict",
        }
    }
}

/// A static host: BK-JOB's `{bk_cloud_id, ip}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostAddr {
    /// The BK-Net (cloud area) id; `0` is the default area.
    pub cloud_id: u64,
    /// IPv4 or IPv6 address.
    pub ip: IpAddr,
}

impl fmt::Display for HostAddr {
    /// `cloud:ip`, with IPv6 in brackets (`0:[::1]`), the form plans use.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(ip) => {
                // Digit by digit rather than through nested `write!`s: hosts are printed for
                // every edge and report line that names one.
                let mut digits = itoa::Buffer::new();
                f.write_str(digits.format(self.cloud_id))?;
                for (i, octet) in ip.octets().into_iter().enumerate() {
                    f.write_str(if i == 0 { ":" } else { "." })?;
                    f.write_str(digits.format(octet))?;
                }
                Ok(())
            }
            IpAddr::V6(ip) => write!(f, "{}:[{ip}]", self.cloud_id),
        }
    }
}

/// A CMDB host id (JOB's `bk_host_id`, always >= 1), written `host_id:1001` in host strings
/// or as an integer of a group's `host_ids`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostId(pub i64);

impl fmt::Display for HostId {
    /// `host_id:1001`, as plans write it (and as JOB's own messages print it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "host_id:{}", self.0)
    }
}

/// The most hosts one range or CIDR block may select: a larger expansion is refused as a
/// mistake (a `/8` written for a `/24`).
pub const MAX_HOSTS_PER_ENTRY: u64 = 65_536;

/// One octet of an IPv4 range: `first..=last` (equal for a plain octet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OctetRange {
    /// The first value.
    pub first: u8,
    /// The last value (>= `first`).
    pub last: u8,
}

/// An IPv4 range or CIDR block of one cloud area, as a plan writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostRange {
    /// `10.0.[1:2].[10:19]`: every combination of the octets, the last octet varying fastest.
    Octets {
        /// The BK-Net id.
        cloud_id: u64,
        /// The four octets.
        octets: [OctetRange; 4],
    },
    /// `10.0.2.0/28`: the block's addresses without the network and broadcast addresses; a
    /// `/31` has both of its addresses (a point-to-point link, RFC 3021) and a `/32` its one.
    Cidr {
        /// The BK-Net id.
        cloud_id: u64,
        /// The network address (no host bits set).
        network: std::net::Ipv4Addr,
        /// The prefix length, 0 to 32.
        prefix: u8,
    },
}

impl HostRange {
    /// The first and last address of the block, as integers (CIDR only).
    fn cidr_bounds(network: std::net::Ipv4Addr, prefix: u8) -> (u32, u32) {
        let start = u32::from(network);
        let size_minus_one = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
        let end = start | size_minus_one;
        if prefix >= 31 {
            (start, end)
        } else {
            (start + 1, end - 1)
        }
    }

    /// How many hosts the range selects.
    pub fn len(&self) -> u64 {
        match *self {
            HostRange::Octets { octets, .. } => octets
                .iter()
                .map(|o| u64::from(o.last - o.first) + 1)
                .product(),
            HostRange::Cidr {
                network, prefix, ..
            } => {
                let (first, last) = Self::cidr_bounds(network, prefix);
                u64::from(last - first) + 1
            }
        }
    }

    /// Never true: a range selects at least one host.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The BK-Net id of every host of the range.
    pub fn cloud_id(&self) -> u64 {
        match *self {
            HostRange::Octets { cloud_id, .. } | HostRange::Cidr { cloud_id, .. } => cloud_id,
        }
    }

    /// The hosts, in address order.
    pub fn hosts(&self) -> impl Iterator<Item = HostAddr> + use<> {
        let cloud_id = self.cloud_id();
        let (first, last, octets) = match *self {
            HostRange::Octets { octets, .. } => (0, self.len() - 1, Some(octets)),
            HostRange::Cidr {
                network, prefix, ..
            } => {
                let (first, last) = Self::cidr_bounds(network, prefix);
                (u64::from(first), u64::from(last), None)
            }
        };
        (first..=last).map(move |n| {
            let v4 = match octets {
                Some(octets) => {
                    // `n` counts combinations, the last octet fastest.
                    let mut rest = n;
                    let mut bytes = [0u8; 4];
                    for (byte, o) in bytes.iter_mut().zip(octets).rev() {
                        let width = u64::from(o.last - o.first) + 1;
                        *byte = o.first + u8::try_from(rest % width).unwrap_or(0);
                        rest /= width;
                    }
                    std::net::Ipv4Addr::from(bytes)
                }
                None => std::net::Ipv4Addr::from(u32::try_from(n).unwrap_or(u32::MAX)),
            };
            HostAddr {
                cloud_id,
                ip: IpAddr::V4(v4),
            }
        })
    }

    /// True when `host` is one of the range's hosts.
    pub fn contains(&self, host: &HostAddr) -> bool {
        let IpAddr::V4(v4) = host.ip else {
            return false;
        };
        if host.cloud_id != self.cloud_id() {
            return false;
        }
        match *self {
            HostRange::Octets { octets, .. } => octets
                .iter()
                .zip(v4.octets())
                .all(|(o, b)| (o.first..=o.last).contains(&b)),
            HostRange::Cidr {
                network, prefix, ..
            } => {
                let (first, last) = Self::cidr_bounds(network, prefix);
                (first..=last).contains(&u32::from(v4))
            }
        }
    }
}

impl fmt::Display for HostRange {
    /// `cloud:10.0.[1:2].[10:19]` or `cloud:10.0.2.0/28`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostRange::Octets { cloud_id, octets } => {
                write!(f, "{cloud_id}:")?;
                for (i, o) in octets.iter().enumerate() {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if o.first == o.last {
                        write!(f, "{}", o.first)?;
                    } else {
                        write!(f, "[{}:{}]", o.first, o.last)?;
                    }
                }
                Ok(())
            }
            HostRange::Cidr {
                cloud_id,
                network,
                prefix,
            } => write!(f, "{cloud_id}:{network}/{prefix}"),
        }
    }
}

/// A CMDB topology node (`bk_obj_id:bk_inst_id`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopoNode {
    /// `module`, `set`, `biz` or a custom mainline object id.
    pub node_type: String,
    /// The instance id.
    pub id: i64,
}

impl fmt::Display for TopoNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.node_type, self.id)
    }
}

/// A resolved set of hosts: what one `hosts = ...` expands to after following group references.
///
/// Each list is de-duplicated in first-seen order, which is the order requests list them in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostSet {
    /// Static hosts.
    pub ips: Vec<HostAddr>,
    /// CMDB host ids (v3 only).
    pub host_ids: Vec<HostId>,
    /// CMDB dynamic group ids.
    pub dynamic_groups: Vec<String>,
    /// CMDB topology nodes.
    pub topo_nodes: Vec<TopoNode>,
}

impl HostSet {
    /// True when no selector of any kind is present.
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty()
            && self.host_ids.is_empty()
            && self.dynamic_groups.is_empty()
            && self.topo_nodes.is_empty()
    }
}

/// How a push names hosts, as written (a group name or a host string), for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRef {
    /// A `[hosts.NAME]` group.
    Group(Located<String>),
    /// A literal `ip` or `cloud:ip` host string.
    Host(Located<HostAddr>),
    /// A range or CIDR block (`10.0.1.[1:40]`, `10.0.2.0/28`).
    Range(Located<HostRange>),
    /// A CMDB host id string (`host_id:1001`).
    HostId(Located<HostId>),
}

/// A host group after expansion of nested `groups`.
#[derive(Debug, Clone)]
pub struct HostGroup {
    /// The group name.
    pub name: String,
    /// The span of the `[hosts.NAME]` header key.
    pub span: Span,
    /// Every selector the group reaches, nested groups included.
    pub hosts: HostSet,
}

/// Where an effective setting of a push came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Written on the push itself.
    Push,
    /// Inherited from `[plan]`.
    Plan,
}

/// An effective setting and its origin (for `show`'s "inherited from \[plan\]").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    /// The value in effect for this push.
    pub value: T,
    /// Whether the push set it or inherited it.
    pub origin: Origin,
    /// The span of the key's value where it was written (on the push or in `[plan]`).
    pub span: Span,
}

/// One entry of a source's `files`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// The path after variable substitution, exactly as it will be sent to JOB.
    pub path: String,
    /// The span of the string in the plan.
    pub span: Span,
}

impl FileEntry {
    /// True when the entry names a directory (trailing `/` or `\`).
    pub fn is_directory(&self) -> bool {
        self.path.ends_with('/') || self.path.ends_with('\\')
    }
}

/// A JOB third-party file source (bkrepo, COS, Artifactory...), sent as v3 `file_type = 3`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FileSourceRef {
    /// `file_source = "CODE"`: JOB resolves the code to the source's id.
    Code(String),
    /// `file_source_id = N`.
    Id(i64),
}

impl fmt::Display for FileSourceRef {
    /// `file source CODE` or `file source #N`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileSourceRef::Code(code) => write!(f, "file source {code}"),
            FileSourceRef::Id(id) => write!(f, "file source #{id}"),
        }
    }
}

/// One `from` table of a push.
#[derive(Debug, Clone)]
pub struct Source {
    /// The hosts as written (empty for a file source).
    pub host_refs: Vec<HostRef>,
    /// The hosts after expansion (empty for a file source).
    pub hosts: HostSet,
    /// The files to read on those hosts (in a file source: paths inside it, `bucket/path`).
    pub files: Vec<FileEntry>,
    /// The execution account alias on the source hosts: `id:N` when given by
    /// [`Self::account_id`]; for a file source, which takes none, whatever `[plan]` sets (or
    /// empty).
    pub account: Setting<String>,
    /// `account_id`: the account by JOB id (v3), sent instead of the alias.
    pub account_id: Option<Located<i64>>,
    /// A JOB file source instead of hosts (v3).
    pub file_source: Option<Located<FileSourceRef>>,
    /// The span of the whole `from` table.
    pub span: Span,
}

/// The `to` table of a push.
#[derive(Debug, Clone)]
pub struct Target {
    /// The hosts as written.
    pub host_refs: Vec<HostRef>,
    /// The hosts after expansion.
    pub hosts: HostSet,
    /// The target directory, after variable substitution.
    pub path: Located<String>,
    /// `file_target_name`: the name the one delivered file gets (v3), instead of its own.
    pub file_target_name: Option<Located<String>>,
    /// The execution account alias on the target hosts (`id:N` when given by
    /// [`Self::account_id`]).
    pub account: Setting<String>,
    /// `account_id`: the account by JOB id (v3), sent instead of the alias.
    pub account_id: Option<Located<i64>>,
    /// The span of the whole `to` table.
    pub span: Span,
}

/// One `[[push]]`: one JOB call.
#[derive(Debug, Clone)]
pub struct Push {
    /// Unique name.
    pub name: Located<String>,
    /// Position in the file (0-based), the tie-breaker for every ordering.
    pub index: usize,
    /// The span of the whole `[[push]]` table.
    pub span: Span,
    /// Where the files come from (at least one source).
    pub sources: Vec<Source>,
    /// Where they go.
    pub target: Target,
    /// Explicit ordering: names of pushes this one runs after.
    pub after: Vec<Located<String>>,
    /// Effective timeout in seconds, when the push or the plan sets one (JOB's default otherwise).
    pub timeout: Option<Setting<u32>>,
    /// Effective upload speed limit in MB/s (absent = unlimited).
    pub upload_speed_limit: Option<Setting<u32>>,
    /// Effective download speed limit in MB/s (absent = unlimited).
    pub download_speed_limit: Option<Setting<u32>>,
    /// v3 transfer mode, when set.
    pub transfer_mode: Option<Located<TransferMode>>,
    /// Extra attempts for the hosts that failed (0..=5).
    pub retries: u8,
    /// `false` keeps the push in the plan but out of the run.
    pub enabled: bool,
    /// Rolling batches, gate, verification and callback (see docs/rolling.md).
    pub release: crate::release::Release,
}

/// A validated plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `[plan] name`.
    pub name: Located<String>,
    /// `[plan] description`.
    pub description: Option<String>,
    /// The scope's id: `[plan] bk_scope_id`, else `bk_biz_id` (v2 sends it as `bk_biz_id` too).
    pub bk_biz_id: Located<i64>,
    /// `[plan] bk_scope_type`, else the type JOB derives from a bare `bk_biz_id` (ids
    /// 8000000..=9999999 are business sets).
    pub scope_type: ScopeType,
    /// `[plan] api` (or `--api`, applied by the caller through [`crate::ParseOptions`]).
    pub api: Api,
    /// `[plan] task_prefix`.
    pub task_prefix: Option<String>,
    /// The effective variables (plan values with `--var` overrides applied), sorted by name.
    pub vars: BTreeMap<String, String>,
    /// Every host group, expanded, sorted by name.
    pub groups: BTreeMap<String, HostGroup>,
    /// The pushes in file order.
    pub pushes: Vec<Push>,
    /// The files the plan was read from (main file first), for diagnostics.
    pub sources: SourceFiles,
}

impl Plan {
    /// The push with this name.
    pub fn push(&self, name: &str) -> Option<&Push> {
        self.pushes.iter().find(|p| p.name.value == name)
    }

    /// The JOB task name of a push: `[task_prefix]<plan>/<push>`.
    pub fn task_name(&self, push: &Push) -> String {
        format!(
            "{}{}/{}",
            self.task_prefix.as_deref().unwrap_or(""),
            self.name.value,
            push.name.value
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_lines_and_characters() {
        let mut files = SourceFiles::default();
        let id = files.add("p.toml", "a = 1\nnamé = \"x\"\n\nlast");
        assert_eq!(files.line_col(id, 0), (1, 1));
        assert_eq!(files.line_col(id, 5), (1, 6), "the newline ends line 1");
        assert_eq!(files.line_col(id, 6), (2, 1));
        // `é` is two bytes: the `=` after it is the 6th character of line 2.
        assert_eq!(files.line_col(id, 12), (2, 6));
        // An offset inside a multi-byte character points at that character.
        assert_eq!(files.line_col(id, 10), (2, 4));
        assert_eq!(files.line_col(id, 18), (3, 1));
        assert_eq!(files.line_col(id, 19), (4, 1));
        assert_eq!(files.line_col(id, 1000), (4, 5), "past the end clamps");
    }
}
