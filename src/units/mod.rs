//! Units, the ground under everything else: human durations, byte sizes, rates, and the
//! seeded shares and picks that split clients, faults and samples the same way every run, and
//! the STOMP frame format.
//! Nothing here knows about scenarios, clients or reports.

pub mod close_code;
pub mod duration;
pub mod percent;
pub mod rate;
pub mod share;
pub mod size;
pub mod stomp;
