//! Empty: this library target exists so that `dnssink` can name the BPF crate as a
//! build-dependency (for rebuilds); the program is the `dnssink` binary target.
#![no_std]
