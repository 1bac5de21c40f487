mod artefacts;
mod cli;
mod escapes;
mod library;
mod quotas;
mod spans;
mod stdlib;
mod support;
