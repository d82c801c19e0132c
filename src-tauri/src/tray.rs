//! The tray: an icon that shows the total unread count, and a menu listing every profile
//! with its count, do-not-disturb and quit.

use switchboard_core::{ProfileId, ProfileInfo};
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Runtime};

use crate::shell::{OpenConversation, Shell, bring_to_front};

const TRAY_ID: &str = "switchboard";

/// The tray's words, in the UI's language (the UI tells the shell which at start and when the
/// user changes it in Settings).
pub struct Words {
    show: &'static str,
    dnd: &'static str,
    quit: &'static str,
    /// "{n}" stands for the count.
    unread: &'static str,
}

pub const ENGLISH: Words = Words {
    show: "Show Switchboard",
    dnd: "Do not disturb",
    quit: "Quit",
    unread: "{n} unread",
};

pub const CHINESE: Words = Words {
    show: "显示 Switchboard",
    dnd: "勿扰",
    quit: "退出",
    unread: "{n} 条未读",
};

/// The words for a UI language code ("en", "zh"); none for a language the UI does not have.
pub fn words(lang: &str) -> Option<&'static Words> {
    match lang {
        "en" => Some(&ENGLISH),
        "zh" => Some(&CHINESE),
        _ => None,
    }
}

fn tooltip(total: i64, words: &Words) -> String {
    match total {
        0 => "Switchboard".to_string(),
        n => format!(
            "Switchboard · {}",
            words.unread.replace("{n}", &n.to_string())
        ),
    }
}
const BASE_ICON: &[u8] = include_bytes!("../icons/64x64.png");

pub fn create<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let menu = menu(app, &[], false, &ENGLISH)?;
    let (icon, is_template) = crate::platform::initial_icon();
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon)
        .icon_as_template(is_template)
        .tooltip("Switchboard")
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| on_menu(app, event.id().as_ref()))
        .build(app)?;
    Ok(())
}

fn on_menu<R: Runtime>(app: &AppHandle<R>, id: &str) {
    match id {
        "show" => bring_to_front(app, None),
        "quit" => crate::quit(app.clone()),
        "dnd" => {
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                if let Some(shell) = app.try_state::<Shell>() {
                    let on = !shell.do_not_disturb();
                    shell.set_do_not_disturb(&app, on).await;
                }
            });
        }
        other => {
            if let Some(profile) = other.strip_prefix("profile:") {
                bring_to_front(
                    app,
                    Some(OpenConversation {
                        // The id this menu was built with (see `menu`).
                        profile: ProfileId::new(profile),
                        conversation: None,
                    }),
                );
            }
        }
    }
}

fn menu<R: Runtime>(
    app: &AppHandle<R>,
    profiles: &[ProfileInfo],
    dnd: bool,
    words: &Words,
) -> tauri::Result<Menu<R>> {
    let menu = Menu::new(app)?;
    menu.append(&MenuItem::with_id(
        app,
        "show",
        words.show,
        true,
        None::<&str>,
    )?)?;
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    for p in profiles {
        let label = if p.unread > 0 {
            format!("{} ({})", p.record.name, p.unread)
        } else {
            p.record.name.clone()
        };
        let id = format!("profile:{}", p.record.id);
        menu.append(&MenuItem::with_id(app, id, label, true, None::<&str>)?)?;
    }
    if !profiles.is_empty() {
        menu.append(&PredefinedMenuItem::separator(app)?)?;
    }
    menu.append(&CheckMenuItem::with_id(
        app,
        "dnd",
        words.dnd,
        true,
        dnd,
        None::<&str>,
    )?)?;
    menu.append(&MenuItem::with_id(
        app,
        "quit",
        words.quit,
        true,
        None::<&str>,
    )?)?;
    Ok(menu)
}

pub fn update<R: Runtime>(app: &AppHandle<R>, profiles: &[ProfileInfo], dnd: bool, words: &Words) {
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return;
    };
    let total: i64 = profiles.iter().map(|p| p.unread).sum();
    crate::platform::show_unread(app, &tray, total);
    let _ = tray.set_tooltip(Some(tooltip(total, words)));
    if let Ok(m) = menu(app, profiles, dnd, words) {
        let _ = tray.set_menu(Some(m));
    }
}

/// The app icon with a red badge showing `count` (99+ past 99) in its lower right corner.
pub fn icon(count: i64) -> Image<'static> {
    let (mut rgba, w, h) = match Image::from_bytes(BASE_ICON) {
        Ok(img) => (img.rgba().to_vec(), img.width(), img.height()),
        Err(_) => (vec![0x2f; 64 * 64 * 4], 64, 64),
    };
    if count > 0 {
        draw_badge(&mut rgba, w as usize, h as usize, count);
    }
    Image::new_owned(rgba, w, h)
}

/// The badge alone on transparency, for Windows' taskbar overlay (drawn over the app's
/// taskbar button, which already shows the app's icon).
#[cfg_attr(not(windows), allow(dead_code))]
pub fn badge_only(count: i64) -> Image<'static> {
    const SIDE: usize = 32;
    let mut rgba = vec![0; SIDE * SIDE * 4];
    if count > 0 {
        draw_badge(&mut rgba, SIDE, SIDE, count);
    }
    Image::new_owned(rgba, SIDE as u32, SIDE as u32)
}

/// Digits 0-9 and '+' in a 3×5 bitmap font, one row per 3 bits.
const GLYPHS: [[u8; 5]; 11] = [
    [7, 5, 5, 5, 7],
    [2, 6, 2, 2, 7],
    [7, 1, 7, 4, 7],
    [7, 1, 7, 1, 7],
    [5, 5, 7, 1, 1],
    [7, 4, 7, 1, 7],
    [7, 4, 7, 5, 7],
    [7, 1, 1, 1, 1],
    [7, 5, 7, 5, 7],
    [7, 5, 7, 1, 7],
    [0, 2, 7, 2, 0],
];

fn draw_badge(rgba: &mut [u8], w: usize, h: usize, count: i64) {
    let Some(text) = switchboard_core::platform::badge_text(count) else {
        return;
    };
    let scale = w / 16;
    let glyph_w = 3 * scale;
    let gap = scale;
    let text_w = text.len() * glyph_w + (text.len() - 1) * gap;
    let badge_h = 7 * scale;
    let badge_w = (text_w + 2 * scale).max(badge_h);
    let (x0, y0) = (w - badge_w, h - badge_h);
    let mut put = |x: usize, y: usize, c: [u8; 4]| {
        if x < w && y < h {
            let i = (y * w + x) * 4;
            rgba[i..i + 4].copy_from_slice(&c);
        }
    };
    // A rounded badge: corners cut by a radius of half its height.
    let r = badge_h as f32 / 2.0;
    for y in 0..badge_h {
        for x in 0..badge_w {
            let cx = if (x as f32) < r {
                r
            } else if (x as f32) > badge_w as f32 - r {
                badge_w as f32 - r
            } else {
                x as f32
            };
            let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - r);
            if dx * dx + dy * dy <= r * r {
                put(x0 + x, y0 + y, [0xd9, 0x30, 0x25, 0xff]);
            }
        }
    }
    let tx = x0 + (badge_w - text_w) / 2;
    let ty = y0 + scale;
    for (n, ch) in text.chars().enumerate() {
        let glyph = match ch {
            '+' => GLYPHS[10],
            d => GLYPHS[d.to_digit(10).unwrap_or(0) as usize],
        };
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..3 {
                if bits & (4 >> col) != 0 {
                    for sy in 0..scale {
                        for sx in 0..scale {
                            put(
                                tx + n * (glyph_w + gap) + col * scale + sx,
                                ty + row * scale + sy,
                                [0xff; 4],
                            );
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn red_pixels(img: &Image<'_>) -> usize {
        img.rgba()
            .chunks(4)
            .filter(|p| p == &[0xd9, 0x30, 0x25, 0xff])
            .count()
    }

    #[test]
    fn the_icon_shows_a_badge_only_when_something_is_unread() {
        assert_eq!(red_pixels(&icon(0)), 0, "no badge at zero");
        let one = icon(1);
        assert!(red_pixels(&one) > 100, "a badge at one");
        assert_ne!(
            icon(7).rgba(),
            one.rgba(),
            "the number is drawn, not just a dot"
        );
        assert!(
            red_pixels(&icon(1000)) >= red_pixels(&one),
            "99+ takes a wider badge"
        );
    }

    #[test]
    fn the_taskbar_overlay_is_the_badge_alone() {
        assert!(
            badge_only(0).rgba().iter().all(|b| *b == 0),
            "no overlay content at zero"
        );
        let five = badge_only(5);
        assert!(red_pixels(&five) > 50, "a red badge");
        let clear = five.rgba().chunks(4).filter(|p| p[3] == 0).count();
        assert!(clear > 0, "around it the taskbar button shows through");
    }

    #[test]
    fn the_tray_speaks_the_uis_languages() {
        assert_eq!(tooltip(0, &ENGLISH), "Switchboard");
        assert_eq!(tooltip(3, &ENGLISH), "Switchboard · 3 unread");
        assert_eq!(tooltip(3, words("zh").unwrap()), "Switchboard · 3 条未读");
        assert_eq!(words("zh").unwrap().quit, "退出");
        assert!(words("fr").is_none(), "a language the UI lacks is refused");
    }
}
