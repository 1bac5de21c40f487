fn main() -> std::process::ExitCode {
    hero_logic::cli::main()
}
