//! Points from coordinate columns of delimited text: which columns hold them, how the numbers
//! are written (Swedish exports use decimal commas and spaces between thousands), whether X and
//! Y were swapped (Swedish surveying calls the northing X), and what CRS a file without one is in.
//! Pure functions over strings and numbers; GDAL is not involved here.

/// Column names that mean "easting / longitude", compared after [`normalise`].
const X_NAMES: &[&str] = &[
    "x",
    "lon",
    "long",
    "lng",
    "longitude",
    "e",
    "east",
    "easting",
    "ost",
    "öst",
    "ostlig",
    "xkoord",
    "xkoordinat",
    "ekoord",
    "ekoordinat",
    "stoplon",
    "geolon",
    "wgs84lon",
];
/// Column names that mean "northing / latitude".
const Y_NAMES: &[&str] = &[
    "y",
    "lat",
    "latitude",
    "n",
    "north",
    "northing",
    "nord",
    "nordlig",
    "ykoord",
    "ykoordinat",
    "nkoord",
    "nkoordinat",
    "stoplat",
    "geolat",
    "wgs84lat",
];
/// Column names that hold WKT geometry.
const WKT_NAMES: &[&str] = &[
    "wkt", "geom", "geometry", "the_geom", "geometri", "wkt_geom",
];

fn normalise(name: &str) -> String {
    name.trim_start_matches('\u{feff}')
        .chars()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// The index of the first column whose normalised name is in `names`.
fn find(columns: &[String], names: &[&str]) -> Option<usize> {
    columns
        .iter()
        .position(|c| names.contains(&normalise(c).as_str()))
}

/// Finds the X and Y columns by their usual names.
pub fn find_xy(columns: &[String]) -> Option<(usize, usize)> {
    Some((find(columns, X_NAMES)?, find(columns, Y_NAMES)?))
}

pub fn find_wkt(columns: &[String]) -> Option<usize> {
    find(columns, WKT_NAMES)
}

/// True when the X column's name says it is a longitude (so degrees are expected).
pub fn names_say_lonlat(x_name: &str) -> bool {
    matches!(
        normalise(x_name).as_str(),
        "lon" | "long" | "lng" | "longitude" | "stoplon" | "geolon" | "wgs84lon"
    )
}

/// Parses a coordinate as Swedish and international exports write it: `13.0038`, `13,0038`,
/// `6 163 000,5` (spaces or no-break spaces between thousands). Empty means missing.
pub fn parse_number(text: &str) -> Option<f64> {
    let cleaned: String = text
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}'))
        .map(|c| if c == ',' { '.' } else { c })
        .collect();
    if cleaned.is_empty() {
        return None;
    }
    cleaned.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Northings anywhere in Sweden, in SWEREF 99 and RT 90 (metres).
const SWEDISH_NORTHING: std::ops::RangeInclusive<f64> = 6_050_000.0..=7_700_000.0;

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// What a sample of (x, y) pairs says about the file.
#[derive(Debug, Clone, PartialEq)]
pub struct CoordinateVerdict {
    /// X holds the northing (or latitude): swap every pair.
    pub swap: bool,
    /// The CRS to assume when the file has none, if the values make it plain.
    pub guessed_crs: Option<&'static str>,
    pub warnings: Vec<String>,
}

/// Judges a sample of coordinate pairs (as read, before any swap). `has_crs` is whether the
/// user or the file named a CRS; `lonlat_names` whether the columns are called lon/lat.
pub fn judge(
    sample: &[(f64, f64)],
    has_crs: bool,
    lonlat_names: bool,
) -> Result<CoordinateVerdict, String> {
    let mut verdict = CoordinateVerdict {
        swap: false,
        guessed_crs: None,
        warnings: Vec::new(),
    };
    let (Some(mx), Some(my)) = (
        median(sample.iter().map(|p| p.0).collect()),
        median(sample.iter().map(|p| p.1).collect()),
    ) else {
        return Ok(verdict);
    };
    let is_degrees = |a: f64, b: f64| (-180.0..=180.0).contains(&a) && (-90.0..=90.0).contains(&b);
    let (mut ex, mut ny) = (mx, my);
    if SWEDISH_NORTHING.contains(&mx) && !SWEDISH_NORTHING.contains(&my) && my < 2_000_000.0 {
        verdict.swap = true;
        verdict.warnings.push(format!(
            "X holds northings (median X {mx:.0}, Y {my:.0}), as Swedish surveying writes them: X and Y swapped"
        ));
        (ex, ny) = (my, mx);
    } else if (54.0..=70.0).contains(&mx) && (10.0..=25.0).contains(&my) {
        verdict.swap = true;
        verdict.warnings.push(format!(
            "the X column holds latitudes and Y longitudes (median {mx:.3}, {my:.3}): swapped"
        ));
        (ex, ny) = (my, mx);
    }
    if !has_crs {
        if is_degrees(ex, ny) {
            verdict.guessed_crs = Some("EPSG:4326");
            if !lonlat_names {
                verdict.warnings.push(
                    "no CRS given; the values look like degrees: read as WGS 84 longitude/latitude"
                        .into(),
                );
            }
        } else {
            return Err(format!(
                "the coordinates look projected (median E {ex:.0}, N {ny:.0}) but the file names no CRS: \
                 give --source-crs (SWEREF 99 TM is EPSG:3006, SWEREF 99 13 30 is EPSG:3008, RT 90 2.5 gon V is EPSG:3021)"
            ));
        }
    }
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("13.0038", Some(13.0038))]
    #[case("13,0038", Some(13.0038))]
    #[case(" 6 163 000,5 ", Some(6_163_000.5))]
    #[case("6\u{a0}163\u{a0}000", Some(6_163_000.0))]
    #[case("", None)]
    #[case("NaN", None)]
    #[case("abc", None)]
    fn numbers(#[case] text: &str, #[case] want: Option<f64>) {
        assert_eq!(parse_number(text), want);
    }

    #[test]
    fn finds_columns_by_common_names() {
        let cols = ["\u{feff}place_id", "name", "latitude", "longitude"].map(String::from);
        assert_eq!(find_xy(&cols), Some((3, 2)));
        let cols = ["Öst", "Nord"].map(String::from);
        assert_eq!(find_xy(&cols), Some((0, 1)));
        let cols = ["Easting", "Northing"].map(String::from);
        assert_eq!(find_xy(&cols), Some((0, 1)));
        let cols = ["stop_id", "stop_lat", "stop_lon"].map(String::from);
        assert_eq!(find_xy(&cols), Some((2, 1)));
        assert_eq!(find_xy(&["a".to_string(), "b".to_string()]), None);
    }

    #[test]
    fn swedish_x_northing_is_swapped() {
        // Malmö in SWEREF 99 13 30 written surveyor-style: X = northing.
        let sample = [(6_163_000.0, 119_000.0), (6_160_000.0, 118_000.0)];
        let v = judge(&sample, true, false).expect("judged");
        assert!(v.swap);
        let v = judge(&[(119_000.0, 6_163_000.0)], true, false).expect("judged");
        assert!(!v.swap);
    }

    #[test]
    fn latitude_in_x_is_swapped() {
        let v = judge(&[(55.6, 13.0)], false, false).expect("judged");
        assert!(v.swap);
        assert_eq!(v.guessed_crs, Some("EPSG:4326"));
    }

    #[test]
    fn projected_without_crs_is_an_error() {
        let err = judge(&[(119_000.0, 6_163_000.0)], false, false).expect_err("must refuse");
        assert!(err.contains("--source-crs"), "{err}");
    }

    #[test]
    fn degrees_without_crs_are_wgs84() {
        let v = judge(&[(12.3, 57.6)], false, true).expect("judged");
        assert_eq!(v.guessed_crs, Some("EPSG:4326"));
        assert!(v.warnings.is_empty());
    }
}
