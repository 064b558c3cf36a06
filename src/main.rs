fn main() {
    std::process::exit(chargeback::run(std::env::args_os()));
}
