fn main() {
    println!("lambda-console: being written");
}
