//! Task names: JOB's limit on them, and the run tag an apply appends so that every job of a
//! run can be found again in JOB (`get_job_instance_list`'s fuzzy `name`) and traced back
//! to its plan, push and run.
//!
//! A plan's task name is `[task_prefix]<plan>/<push>` (what `plan show` prints); an apply
//! sends `[task_prefix]<plan>/<push>#<tag>`, where `<tag>` is [`RUN_TAG_LEN`] lowercase hex
//! digits naming the run. Plan and push names never hold `#`, so the last `#` ends the base.

/// The longest task name JOB stores (`task_instance.name` is `varchar(512)`), in characters.
pub const TASK_NAME_MAX_CHARS: usize = 512;

/// The characters of a run tag (lowercase hex).
pub const RUN_TAG_LEN: usize = 8;

/// What an apply adds to every task name: `#` and the run tag. A plan's own task names must
/// stay within [`TASK_NAME_MAX_CHARS`] minus this.
pub const RUN_TAG_SUFFIX_CHARS: usize = 1 + RUN_TAG_LEN;

/// The longest task name a plan may give a push, leaving room for the run tag.
pub const PLAN_TASK_NAME_MAX_CHARS: usize = TASK_NAME_MAX_CHARS - RUN_TAG_SUFFIX_CHARS;

/// The task name an apply sends: `base#tag`.
pub fn with_run_tag(base: &str, tag: &str) -> String {
    format!("{base}#{tag}")
}

/// The task name of one batch of a push whose batches the plan cuts (v2 rolling):
/// `base batch i/N`, within [`PLAN_TASK_NAME_MAX_CHARS`] so the run tag still fits; a base
/// too long for the suffix loses characters at its end, never the batch it names.
pub fn with_batch(base: &str, batch: usize, batches: usize) -> String {
    let suffix = format!(" batch {batch}/{batches}");
    let room = PLAN_TASK_NAME_MAX_CHARS.saturating_sub(suffix.chars().count());
    let kept: String = base.chars().take(room).collect();
    format!("{kept}{suffix}")
}

/// Splits a task name an apply sent into its base (`[task_prefix]<plan>/<push>`) and run
/// tag; `None` for a name without a well-formed tag (created by hand, or before run tags).
pub fn split_run_tag(name: &str) -> Option<(&str, &str)> {
    let (base, tag) = name.rsplit_once('#')?;
    is_run_tag(tag).then_some((base, tag))
}

/// True for [`RUN_TAG_LEN`] lowercase hex digits.
pub fn is_run_tag(tag: &str) -> bool {
    tag.len() == RUN_TAG_LEN
        && tag
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tagged_name_splits_back_into_base_and_tag() {
        let name = with_run_tag("ops#1/release/to-web", "a1b2c3d4");
        assert_eq!(name, "ops#1/release/to-web#a1b2c3d4");
        assert_eq!(
            split_run_tag(&name),
            Some(("ops#1/release/to-web", "a1b2c3d4"))
        );
    }

    #[test]
    fn names_without_a_well_formed_tag_do_not_split() {
        for name in [
            "release/to-web",
            "release/to-web#",
            "release/to-web#A1B2C3D4",
            "release/to-web#a1b2c3d",
            "release/to-web#a1b2c3d45",
            "release/to-web#a1b2c3dg",
        ] {
            assert_eq!(split_run_tag(name), None, "{name}");
        }
    }

    #[test]
    fn a_batch_name_keeps_its_batch_and_room_for_the_tag() {
        assert_eq!(with_batch("ops/to-web", 2, 5), "ops/to-web batch 2/5");
        let long = "x".repeat(PLAN_TASK_NAME_MAX_CHARS);
        let name = with_batch(&long, 499, 500);
        assert!(name.ends_with(" batch 499/500"), "{name}");
        assert_eq!(name.chars().count(), PLAN_TASK_NAME_MAX_CHARS);
        assert_eq!(
            with_run_tag(&name, "00000000").chars().count(),
            TASK_NAME_MAX_CHARS
        );
    }

    #[test]
    fn the_plan_limit_leaves_room_for_the_tag() {
        let base = "x".repeat(PLAN_TASK_NAME_MAX_CHARS);
        assert_eq!(
            with_run_tag(&base, "00000000").chars().count(),
            TASK_NAME_MAX_CHARS
        );
    }
}
