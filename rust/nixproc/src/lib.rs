pub mod deploy;
pub mod generate_config;
pub mod generations;
pub mod id_assign;
pub mod lock;
pub mod state_dirs;
