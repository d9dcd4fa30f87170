fn main() {
    println!("deploy-protected: being written");
}
