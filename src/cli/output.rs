//! The command line's answers on stdout. A reader that goes away early
//! (`hero_logic run flow.py --json | head -c 100`) is not worth a panic: the
//! rest of the output is simply not wanted, and the exit code still tells how
//! the command went.

use std::io::{ErrorKind, Write};

/// Write `text` to stdout; a closed pipe ends the output quietly, any other
/// failure (a full disk) is said once on stderr.
pub fn write(text: std::fmt::Arguments) {
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_fmt(text).and_then(|()| stdout.flush())
        && error.kind() != ErrorKind::BrokenPipe
    {
        eprintln!("error: could not write the output: {error}");
    }
}

/// `println!` for the command line's answers, through `write`.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use outln;
