fn main() {
    println!("defender: being written");
}
