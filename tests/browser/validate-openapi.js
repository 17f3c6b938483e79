// Validates an OpenAPI document against the OpenAPI 3.0 schema (swagger-parser, an independent
// implementation): node validate-openapi.js FILE. Exit 0 and "valid" when it is; 1 and the
// schema errors when not. tests/features.rs runs it on openapi/openapi.json.
const SwaggerParser = require("@apidevtools/swagger-parser");
const fs = require("fs");

const file = process.argv[2];
if (!file) {
    console.error("usage: node validate-openapi.js FILE");
    process.exit(2);
}
SwaggerParser.validate(JSON.parse(fs.readFileSync(file, "utf8")))
    .then(() => console.log("valid"))
    .catch((e) => {
        console.error(e.message);
        process.exit(1);
    });
