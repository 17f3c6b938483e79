//! The GDAL calls the `gdal` crate does not wrap and hamn needs (the only unsafe code): whether
//! a field is *set*, whether a feature has a geometry, a field's Boolean subtype, which driver
//! GDAL would pick for a file, arcs turned into straight segments, and (for `crate::download`)
//! a new field with a subtype.
//!
//! GDAL distinguishes "unset" (a GeoJSON feature without that property) from "null"; the
//! crate's `Feature::field` checks only null, and reads an unset integer as 0 and an unset
//! date as an error — which would store values the source never had.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};

use gdal::vector::{Feature, Geometry, LayerAccess};

/// True when the field has a value (set and not null).
pub fn has_value(feature: &Feature, idx: usize) -> bool {
    let Ok(idx) = i32::try_from(idx) else {
        return false;
    };
    // SAFETY: `c_feature` is a valid handle for as long as `feature` is borrowed, and
    // OGR_F_IsFieldSetAndNotNull only reads it; an out-of-range index returns false.
    unsafe { gdal_sys::OGR_F_IsFieldSetAndNotNull(feature.c_feature(), idx) != 0 }
}

/// True when the feature has a geometry. The crate's `Feature::geometry` returns `Some` with a
/// null handle for a feature without one (GeoJSON `"geometry": null`), which GDAL then rejects.
pub fn has_geometry(feature: &Feature) -> bool {
    // SAFETY: as above; OGR_F_GetGeometryRef only reads the handle and returns a borrowed pointer
    // we compare with null and do not keep.
    unsafe { !gdal_sys::OGR_F_GetGeometryRef(feature.c_feature()).is_null() }
}

/// True when field `idx` of the layer definition is an integer with GDAL's Boolean subtype
/// (how the GeoJSON, GeoPackage and FlatGeobuf drivers report `true`/`false` values); the
/// crate exposes the type but not the subtype.
pub fn is_boolean_field(defn: &gdal::vector::Defn, idx: usize) -> bool {
    let Ok(idx) = i32::try_from(idx) else {
        return false;
    };
    // SAFETY: the definition handle is valid while `defn` is borrowed; OGR_FD_GetFieldDefn
    // returns null for an index out of range (checked) and a borrowed handle otherwise, which
    // OGR_Fld_GetSubType only reads.
    unsafe {
        let field = gdal_sys::OGR_FD_GetFieldDefn(defn.c_defn(), idx);
        !field.is_null()
            && gdal_sys::OGR_Fld_GetSubType(field) == gdal_sys::OGRFieldSubType::OFSTBoolean
    }
}

/// The short name of the vector driver GDAL would choose for `path`, if any.
///
/// GDALIdentifyDriverEx asks each driver's Identify (header bytes and the name only) and
/// returns the first that claims the file. Only when none does, it tries Open with the
/// drivers that have no Identify (in GDAL 3.6: local-file readers such as GPX, NTF, TIGER;
/// their Open reads the named file and nothing it refers to).
pub fn identify_vector_driver(path: &str) -> Option<String> {
    let c_path = CString::new(path).ok()?;
    // Registers the drivers on first use, as the crate's own open does.
    gdal::DriverManager::count();
    // SAFETY: `c_path` outlives the call; null lists mean "every driver" and "no sibling
    // list". The driver handle is owned by GDAL's driver manager and lives as long as the
    // process; its short name is a string GDAL owns, copied here before returning.
    unsafe {
        let driver = gdal_sys::GDALIdentifyDriverEx(
            c_path.as_ptr(),
            gdal::GdalOpenFlags::GDAL_OF_VECTOR.bits(),
            std::ptr::null(),
            std::ptr::null(),
        );
        if driver.is_null() {
            return None;
        }
        let name = gdal_sys::GDALGetDriverShortName(driver);
        if name.is_null() {
            return None;
        }
        Some(CStr::from_ptr(name).to_string_lossy().into_owned())
    }
}

/// `geom` with its arcs replaced by straight segments, or `None` when it has no curve types
/// (CircularString, CompoundCurve, CurvePolygon, MultiCurve, MultiSurface).
///
/// GDAL's default step applies: a vertex every 4 degrees of arc (config `OGR_ARC_STEPSIZE`).
/// A MultiSurface of plain polygons counts as curved too: it becomes a MultiPolygon, the type
/// GeoJSON knows.
pub fn linear_geometry(geom: &Geometry) -> Option<Geometry> {
    // SAFETY: `c_geometry` is valid while `geom` is borrowed; both calls only read it.
    // OGR_G_GetLinearGeometry returns a new geometry that we own: it is exported and destroyed
    // here, on every path, before returning.
    let wkb = unsafe {
        let handle = geom.c_geometry();
        if gdal_sys::OGR_G_HasCurveGeometry(handle, 0) == 0 {
            return None;
        }
        let linear = gdal_sys::OGR_G_GetLinearGeometry(handle, 0.0, std::ptr::null_mut());
        if linear.is_null() {
            return None;
        }
        let mut wkb = vec![0u8; gdal_sys::OGR_G_WkbSizeEx(linear)];
        let err = gdal_sys::OGR_G_ExportToIsoWkb(
            linear,
            gdal_sys::OGRwkbByteOrder::wkbNDR,
            wkb.as_mut_ptr(),
        );
        gdal_sys::OGR_G_DestroyGeometry(linear);
        if err != gdal_sys::OGRErr::OGRERR_NONE {
            return None;
        }
        wkb
    };
    // The crate cannot take ownership of a GDAL handle, so the result crosses as WKB; only
    // curved features pay for it.
    Geometry::from_wkb(&wkb).ok()
}

/// Adds a field with a subtype to a layer being written (bulk downloads): the gdal crate's `FieldDefn` does not set subtypes, which
/// make booleans BOOLEAN columns (not 0/1 integers) and JSON texts JSON in both formats.
pub fn add_field(
    layer: &gdal::vector::Layer,
    name: &str,
    (kind, sub): (
        gdal_sys::OGRFieldType::Type,
        gdal_sys::OGRFieldSubType::Type,
    ),
) -> gdal::errors::Result<()> {
    let c_name = std::ffi::CString::new(name.replace('\0', "\u{fffd}"))
        .map_err(gdal::errors::GdalError::FfiNulError)?;
    // SAFETY: the field definition is created, used and destroyed here; the layer handle
    // lives as long as `layer`. OGR_L_CreateField copies the definition.
    let rv = unsafe {
        let defn = gdal_sys::OGR_Fld_Create(c_name.as_ptr(), kind);
        gdal_sys::OGR_Fld_SetSubType(defn, sub);
        let rv = gdal_sys::OGR_L_CreateField(layer.c_layer(), defn, 1);
        gdal_sys::OGR_Fld_Destroy(defn);
        rv
    };
    if rv != gdal_sys::OGRErr::OGRERR_NONE {
        return Err(gdal::errors::GdalError::OgrError {
            err: rv,
            method_name: "OGR_L_CreateField",
        });
    }
    Ok(())
}
