pub mod deploy;
pub mod generations;
pub mod lock;
pub mod state_dirs;
