//! Test component that exports none of the plugin worlds' functions.

wit_bindgen::generate!({
    inline: "
        package ekt:no-export;
        world no-export {
            export hello: func() -> u32;
        }
    ",
});

struct Plugin;

impl Guest for Plugin {
    fn hello() -> u32 {
        42
    }
}

export!(Plugin);
