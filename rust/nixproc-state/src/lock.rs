//! SKELETON — flock(2) locks on `<root>/lock` and per instance; released
//! by the kernel when the process dies (never stale).
