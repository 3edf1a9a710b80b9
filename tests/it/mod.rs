pub mod testkit;

mod cli;
mod enroll;
mod lifecycle;
