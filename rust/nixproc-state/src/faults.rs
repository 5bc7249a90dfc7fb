//! SKELETON — fault injection for crash-safety tests: `NIXPROC_FAULT=<point>`
//! makes the process SIGKILL itself when it reaches `<point>`.
