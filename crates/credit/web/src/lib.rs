pub static PLACEHOLDER: u8 = 0;
