//! Every diagnostic code the parser reports, as one enumerated list: [`ParseErrorKind`].
//!
//! A problem is built from a kind (`Problem::error(ParseErrorKind::UnknownKey.code(), ...)`),
//! never from a code spelled in place, so a code cannot be mistyped and the list in
//! `docs/diagnostics.md` is generated from [`ParseErrorKind::ALL`]. Codes are a stable
//! contract: add a kind, never rename one.

/// Declares the kind enum, its codes, one-line meanings and the list of all kinds.
macro_rules! kinds {
    ($($kind:ident => $code:literal, $meaning:literal;)+) => {
        /// What a parser diagnostic is about; [`ParseErrorKind::code`] is its stable code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ParseErrorKind {
            $(
                #[doc = $meaning]
                $kind,
            )+
        }

        impl ParseErrorKind {
            /// Every kind, in the order the documentation lists them.
            pub const ALL: &[ParseErrorKind] = &[$(ParseErrorKind::$kind),+];

            /// The stable code, e.g. `plan::parser::unknown_key`.
            pub const fn code(self) -> &'static str {
                match self {
                    $(ParseErrorKind::$kind => $code,)+
                }
            }

            /// What the code means, in one line.
            pub const fn meaning(self) -> &'static str {
                match self {
                    $(ParseErrorKind::$kind => $meaning,)+
                }
            }
        }
    };
}

kinds! {
    TomlSyntax => "plan::parser::toml_syntax", "A file is not valid TOML.";
    Unreadable => "plan::parser::unreadable", "The plan file cannot be read.";
    NotUtf8 => "plan::parser::not_utf8", "A file is not UTF-8 text (the first bad byte is shown).";
    UnsupportedVersion => "plan::parser::unsupported_version", "`version` names a format version this planner does not read.";
    MissingPlan => "plan::parser::missing_plan", "The plan has no `[plan]` table.";
    NoPush => "plan::parser::no_push", "The plan has no `[[push]]`.";
    UnknownKey => "plan::parser::unknown_key", "A key the format does not know (with a did-you-mean when one is close).";
    MissingKey => "plan::parser::missing_key", "A required key is absent.";
    WrongType => "plan::parser::wrong_type", "A value has the wrong TOML type.";
    OutOfRange => "plan::parser::out_of_range", "A number is outside what the format or JOB accepts.";
    CredentialInPlan => "plan::parser::credential_in_plan", "A credential is written in the plan; credentials come from the environment only.";
    IncludeUnreadable => "plan::parser::include_unreadable", "An included file cannot be read (empty include path, missing file, not UTF-8).";
    IncludeSelf => "plan::parser::include_self", "A plan includes itself.";
    DuplicateInclude => "plan::parser::duplicate_include", "The same file is included twice.";
    IncludeOutsideRoot => "plan::parser::include_outside_root", "An include is absolute, or resolves outside the plan's repository or inside `.git`.";
    IncludeTooLarge => "plan::parser::include_too_large", "An included file is larger than the include limit.";
    IncludeNotAFile => "plan::parser::include_not_a_file", "An include names something other than a regular file.";
    IncludeForbiddenKey => "plan::parser::include_forbidden_key", "An included file sets a key only the main plan may set.";
    InvalidApi => "plan::parser::invalid_api", "`api` is neither `\"v2\"` nor `\"v3\"`.";
    InvalidTransferMode => "plan::parser::invalid_transfer_mode", "`transfer_mode` is neither `\"force\"` nor `\"strict\"`.";
    V3Only => "plan::parser::v3_only", "A key only the v3 API has (`transfer_mode`, `file_target_name`, `account_id`, a file source) in a v2 plan.";
    InvalidName => "plan::parser::invalid_name", "A plan or push name is not 1 to 64 of `A-Z a-z 0-9 _ . -`.";
    InvalidAccount => "plan::parser::invalid_account", "An account alias holds a character JOB cannot take as written.";
    EmptyAccount => "plan::parser::empty_account", "An account alias is empty.";
    MissingAccount => "plan::parser::missing_account", "A push has no execution account, on itself or in `[plan]`.";
    DuplicateVar => "plan::parser::duplicate_var", "A variable is defined twice.";
    InvalidVarName => "plan::parser::invalid_var_name", "A variable name is not a valid one.";
    UndefinedVar => "plan::parser::undefined_var", "`${name}` names no variable.";
    UnterminatedVar => "plan::parser::unterminated_var", "`${` has no closing `}`.";
    ExpansionLimit => "plan::parser::expansion_limit", "Variables expand the plan past its byte budget.";
    ValueTooLong => "plan::parser::value_too_long", "One value is too long once variables are substituted.";
    DuplicateGroup => "plan::parser::duplicate_group", "A host group is defined twice.";
    InvalidGroupName => "plan::parser::invalid_group_name", "A host group name is not a valid one.";
    UnknownGroup => "plan::parser::unknown_group", "A push or host group names a host group that does not exist.";
    GroupCycle => "plan::parser::group_cycle", "Host groups include each other in a cycle.";
    EmptyGroup => "plan::parser::empty_group", "A host group selects no hosts.";
    HostExpansionLimit => "plan::parser::host_expansion_limit", "Host groups expand the plan past its host-selector budget.";
    Ipv6HostInV3 => "plan::parser::ipv6_host_in_v3", "An IPv6 host in a v3 plan: JOB's v3 `ip_list` takes IPv4 only.";
    InvalidHost => "plan::parser::invalid_host", "A host is not a valid IP, `cloud:ip` or host id.";
    InvalidHostRange => "plan::parser::invalid_host_range", "A host range or CIDR block is malformed, runs backwards, goes past 255 or has host bits set.";
    HostRangeTooLarge => "plan::parser::host_range_too_large", "One range or CIDR block selects more hosts than an entry may (65,536).";
    InvalidHostId => "plan::parser::invalid_host_id", "A CMDB host id is not a positive integer.";
    DuplicateHost => "plan::parser::duplicate_host", "An entry of a host list selects hosts an earlier entry already selects (they are sent once).";
    Ipv6HostInV2 => "plan::parser::ipv6_host_in_v2", "An IPv6 host in a v2 plan: JOB's v2 API looks static hosts up by cloud and IPv4 only.";
    InvalidScope => "plan::parser::invalid_scope", "`bk_scope_type` is neither `\"biz\"` nor `\"biz_set\"`, a scope key lacks its pair, or `bk_biz_id` and `bk_scope_id` disagree.";
    TaskNameTooLong => "plan::parser::task_name_too_long", "A push's JOB task name would pass JOB's 512 characters (with the run tag an apply adds).";
    ConflictingKeys => "plan::parser::conflicting_keys", "Two keys that exclude each other are written together (`hosts` and a file source, `file_source` and `file_source_id`, `account` and `account_id`).";
    InvalidFileSource => "plan::parser::invalid_file_source", "A `file_source` code is empty or malformed, or a `file_source_id` is not positive.";
    InvalidTargetName => "plan::parser::invalid_target_name", "`file_target_name` is empty or holds a `/`, or the push delivers more than one file.";
    HostIdsWithAddresses => "plan::parser::host_ids_with_addresses", "A v3 target or source names hosts both by CMDB id and by address: JOB ignores `ip_list` when `host_id_list` is set.";
    HostIdInV2 => "plan::parser::host_id_in_v2", "A CMDB host id in a v2 plan: only the v3 API takes `host_id_list`.";
    InvalidDynamicGroup => "plan::parser::invalid_dynamic_group", "A dynamic group id is malformed.";
    InvalidTopoNode => "plan::parser::invalid_topo_node", "A topology node has an unknown type or an invalid id.";
    NoHosts => "plan::parser::no_hosts", "A target or source selects no host.";
    DuplicatePush => "plan::parser::duplicate_push", "Two pushes share a name.";
    SelfDependency => "plan::parser::self_dependency", "A push lists itself in `after`.";
    UnknownPush => "plan::parser::unknown_push", "`after` names a push that does not exist.";
    EmptyFrom => "plan::parser::empty_from", "`from` lists no source.";
    EmptyFiles => "plan::parser::empty_files", "A source's `files` is empty.";
    DuplicateDelivery => "plan::parser::duplicate_delivery", "A push delivers the same name into one directory twice.";
    OverwritingCopies => "plan::parser::overwriting_copies", "Several source hosts deliver the same files into one directory without `[FILESRCIP]`: the copies overwrite each other.";
    InvalidPath => "plan::parser::invalid_path", "JOB's path rule rejects a path.";
    InvalidTargetPath => "plan::parser::invalid_target_path", "The target path holds a pattern (`REGEX:` or `*`), which only source files may.";
    InvalidRegex => "plan::parser::invalid_regex", "A `REGEX:` source is misplaced or not a valid pattern.";
    DotComponent => "plan::parser::dot_component", "A path has a `.` or `..` component.";
    NulCharacter => "plan::parser::nul_character", "A path holds a NUL character.";
    InvisibleCharacter => "plan::parser::invisible_character", "A path holds an invisible or bidirectional character.";
    ControlCharacter => "plan::parser::control_character", "A path holds a tab, line break or other control character.";
    UnusedVar => "plan::parser::unused_var", "A variable is never used.";
    UnusedGroup => "plan::parser::unused_group", "A host group is never used.";
    InvalidRolling => "plan::parser::invalid_rolling", "A `rolling` table JOB would refuse: a bad expression or mode, too many batches, both kinds of rolling, or neither.";
    RollingNeedsStaticHosts => "plan::parser::rolling_needs_static_hosts", "Plan-made (v2) rolling batches over targets that are not static hosts: only JOB's v3 rolling resolves dynamic groups and topology nodes.";
    InvalidVerify => "plan::parser::invalid_verify", "`verify` is neither `\"size\"` nor `\"sha256\"`, or `\"sha256\"` is asked of a source the hashing script cannot name (`REGEX:`, wildcard, directory, file source).";
    UnapprovableGate => "plan::parser::unapprovable_gate", "`gate = true` on a push that never runs (`enabled = false`): nothing would ever ask for, or could give, the approval.";
}

/// The code of [`crate::PlanErrors`], the summary of all problems of a run.
pub const PLAN_INVALID: &str = "plan::invalid";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_named_after_their_kind() {
        let mut seen = std::collections::HashSet::new();
        for kind in ParseErrorKind::ALL {
            assert!(seen.insert(kind.code()), "{kind:?} repeats a code");
            let name = kind
                .code()
                .strip_prefix("plan::parser::")
                .unwrap_or_default();
            let camel: String = name
                .split('_')
                .map(|w| w[..1].to_uppercase() + &w[1..])
                .collect();
            assert_eq!(format!("{kind:?}"), camel);
            assert!(kind.meaning().ends_with('.'), "{kind:?}");
        }
        assert_eq!(
            ParseErrorKind::IncludeUnreadable.code(),
            "plan::parser::include_unreadable"
        );
    }
}
