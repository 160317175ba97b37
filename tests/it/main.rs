//! Integration tests: the real binary, real sockets, temporary configs and state.

mod cli;
mod control;
mod harness;
mod persistence;
mod webhook;
