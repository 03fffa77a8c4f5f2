//! QR codes for tracking links and cards, as SVG (for the console and print) and PNG (for
//! chat tools and printers that want a bitmap).

use qrcode::{Color, EcLevel, QrCode};

#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("the text is too long for a QR code")]
    TooLong,
    #[error("PNG encoding: {0}")]
    Png(String),
}

fn code(text: &str) -> Result<QrCode, QrError> {
    // Level M survives a crease or a smudge on a printed card.
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).map_err(|_| QrError::TooLong)
}

/// An SVG at least `size` pixels wide, with the standard quiet zone.
pub fn svg(text: &str, size: u32) -> Result<String, QrError> {
    Ok(code(text)?
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(size, size)
        .build())
}

/// The modules of the code as rows of dark (true) / light, without quiet zone.
pub fn modules(text: &str) -> Result<(usize, Vec<bool>), QrError> {
    let c = code(text)?;
    let w = c.width();
    Ok((
        w,
        c.to_colors()
            .into_iter()
            .map(|m| m == Color::Dark)
            .collect(),
    ))
}

/// An 8-bit greyscale PNG, `scale` pixels per module, with a 4-module quiet zone.
pub fn png(text: &str, scale: u32) -> Result<Vec<u8>, QrError> {
    let (w, dark) = modules(text)?;
    let scale = scale.clamp(1, 32) as usize;
    let side = (w + 8) * scale;
    let mut pixels = vec![255u8; side * side];
    for (i, d) in dark.iter().enumerate() {
        if !d {
            continue;
        }
        let (mx, my) = (i % w + 4, i / w + 4);
        for y in my * scale..(my + 1) * scale {
            pixels[y * side + mx * scale..y * side + (mx + 1) * scale].fill(0);
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, side as u32, side as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc
        .write_header()
        .map_err(|e| QrError::Png(e.to_string()))?;
    writer
        .write_image_data(&pixels)
        .map_err(|e| QrError::Png(e.to_string()))?;
    writer.finish().map_err(|e| QrError::Png(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_and_png_are_well_formed() {
        let s = svg("https://s.example.cn/t/Ab3dE9xK", 200).expect("svg");
        assert!(s.starts_with("<?xml") && s.contains("<svg") && s.contains("<path"));
        let p = png("https://s.example.cn/t/Ab3dE9xK", 4).expect("png");
        assert_eq!(&p[..8], b"\x89PNG\r\n\x1a\n");
        let d = png::Decoder::new(std::io::Cursor::new(p));
        let r = d.read_info().expect("decodes");
        let (w, _) = modules("https://s.example.cn/t/Ab3dE9xK").expect("modules");
        assert_eq!(r.info().width as usize, (w + 8) * 4);
    }
}
