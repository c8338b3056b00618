//! Empty: lets the tests crate name this one as a build-dependency; the programs are the bin.
#![no_std]
