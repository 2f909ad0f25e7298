//! Journals cut at every line, full disks and file-size limits: every push is submitted at most
//! once, and a journal that cannot be trusted refuses to resume.
