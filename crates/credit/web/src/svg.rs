//! Pictures drawn on the server: the score's gauge and its history. Only
//! numbers (and days) go into them, never text from a person.

/// Where a score sits on the gauge's half circle (350 on the left, 950 on the right).
fn point(score: i64, min: i64, max: i64, cx: f64, cy: f64, r: f64) -> (f64, f64) {
    let span = (max - min).max(1) as f64;
    let f = ((score.clamp(min, max) - min) as f64) / span;
    let a = std::f64::consts::PI * (1.0 - f);
    (cx + r * a.cos(), cy - r * a.sin())
}

/// A half-circle gauge with the band edges marked and the score's arc filled.
pub fn gauge(score: i64, min: i64, max: i64, edges: &[i64]) -> String {
    let (cx, cy, r) = (110.0, 110.0, 90.0);
    let (x, y) = point(score, min, max, cx, cy, r);
    let mut ticks = String::new();
    for e in edges {
        let (x1, y1) = point(*e, min, max, cx, cy, r - 12.0);
        let (x2, y2) = point(*e, min, max, cx, cy, r + 12.0);
        ticks.push_str(&format!(
            r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="currentColor" stroke-width="1"/>"#
        ));
    }
    format!(
        r##"<svg id="credit-gauge" class="gauge" viewBox="0 0 220 130" width="220" height="130" role="img" aria-label="{score}"><path d="M20,110 A90,90 0 0 1 200,110" fill="none" stroke="#ddd" stroke-width="16"/><path d="M20,110 A90,90 0 0 1 {x:.1},{y:.1}" fill="none" stroke="#1a7f37" stroke-width="16"/>{ticks}<text x="110" y="100" text-anchor="middle" font-size="36" font-weight="bold">{score}</text><text x="20" y="128" text-anchor="middle" font-size="10">{min}</text><text x="200" y="128" text-anchor="middle" font-size="10">{max}</text></svg>"##
    )
}

/// The scores over time as a line (oldest on the left), one dot per score.
pub fn history(points: &[(i64, i64)], min: i64, max: i64) -> String {
    let (w, h, pad) = (320.0, 140.0, 20.0);
    let span = (max - min).max(1) as f64;
    let y_of = |s: i64| h - pad - ((s.clamp(min, max) - min) as f64) / span * (h - 2.0 * pad);
    let n = points.len();
    let x_of = |i: usize| if n <= 1 { w / 2.0 } else { pad + (i as f64) * (w - 2.0 * pad) / ((n - 1) as f64) };
    let line: Vec<String> =
        points.iter().enumerate().map(|(i, (_, s))| format!("{:.1},{:.1}", x_of(i), y_of(*s))).collect();
    let dots: String = points
        .iter()
        .enumerate()
        .map(|(i, (_, s))| format!(r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#1a7f37"/>"##, x_of(i), y_of(*s)))
        .collect();
    let mut grid = String::new();
    for s in [min, 550, 650, max] {
        let y = y_of(s);
        grid.push_str(&format!(
            r##"<line x1="{pad}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/><text x="2" y="{:.1}" font-size="9">{s}</text>"##,
            w - pad,
            y + 3.0
        ));
    }
    // The first and the last score's day under the line (China time), so the chart says when.
    let mut days = String::new();
    let day = |ms: i64| yizhan_core::time::fmt_cst(ms).chars().take(10).collect::<String>();
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let (a, b) = (day(first.0), day(last.0));
        if a == b {
            days.push_str(&format!(
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="9">{a}</text>"#,
                w / 2.0,
                h - 2.0
            ));
        } else {
            days.push_str(&format!(r#"<text x="{pad}" y="{:.1}" font-size="9">{a}</text>"#, h - 2.0));
            days.push_str(&format!(
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="9">{b}</text>"#,
                w - pad,
                h - 2.0
            ));
        }
    }
    format!(
        r##"<svg id="credit-history" class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img">{grid}<polyline points="{}" fill="none" stroke="#1a7f37" stroke-width="2"/>{dots}{days}</svg>"##,
        line.join(" ")
    )
}
