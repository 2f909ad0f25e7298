//! Where a plan's journals and lock live by default: with the plan, not with the shell that
//! runs it.

use std::path::{Path, PathBuf};

/// `.plan/` at the root of the git work tree that holds the plan file, or beside the plan
/// file when no git work tree holds it. The plan file's real path decides (symbolic links
/// resolved), so every working directory and every spelling of the plan's path gives the
/// same directory: one lock and one journal per plan, wherever `apply` is started from.
pub fn default_state_dir(plan_file: &Path) -> std::io::Result<PathBuf> {
    let plan = std::fs::canonicalize(plan_file)?;
    let dir = plan.parent().unwrap_or(Path::new("/"));
    // `.git` is a directory in a clone and a file in a linked work tree or a submodule.
    let root = dir
        .ancestors()
        .find(|d| d.join(".git").exists())
        .unwrap_or(dir);
    Ok(root.join(".plan"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_in_a_repository_keeps_its_state_at_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = std::fs::canonicalize(dir.path()).expect("real path");
        std::fs::create_dir_all(root.join(".git")).expect(".git");
        std::fs::create_dir_all(root.join("plans/web")).expect("plans");
        std::fs::write(root.join("plans/web/plan.toml"), "").expect("plan");
        let state = default_state_dir(&root.join("plans/web/plan.toml")).expect("state dir");
        assert_eq!(state, root.join(".plan"));
        // Another spelling of the same file, through `..` and a symbolic link.
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root.join("plans/web"), root.join("web")).expect("link");
            let other = default_state_dir(&root.join("web/../web/plan.toml")).expect("state dir");
            assert_eq!(other, state);
        }
        // A submodule (or a linked work tree) has a `.git` file: its own root.
        std::fs::create_dir_all(root.join("vendor/sub")).expect("sub");
        std::fs::write(
            root.join("vendor/sub/.git"),
            "gitdir: ../../.git/modules/sub\n",
        )
        .expect(".git");
        std::fs::write(root.join("vendor/sub/plan.toml"), "").expect("plan");
        assert_eq!(
            default_state_dir(&root.join("vendor/sub/plan.toml")).expect("state dir"),
            root.join("vendor/sub/.plan")
        );
    }

    #[test]
    fn a_plan_outside_a_repository_keeps_its_state_beside_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = std::fs::canonicalize(dir.path()).expect("real path");
        std::fs::create_dir_all(root.join("ops")).expect("ops");
        std::fs::write(root.join("ops/plan.toml"), "").expect("plan");
        assert_eq!(
            default_state_dir(&root.join("ops/plan.toml")).expect("state dir"),
            root.join("ops/.plan")
        );
        assert!(default_state_dir(&root.join("missing.toml")).is_err());
    }
}
