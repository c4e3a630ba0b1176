fn main() {
    println!("{}", itoa::Buffer::new().format(util::answer()));
}
