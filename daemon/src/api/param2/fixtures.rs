//! Golden answers for the parser and classifier tests, copied (trimmed where marked) from
//! public sources. Each names where it came from; none was invented here. Where the source is
//! a doc sample, the platform filled some fields with placeholders (`"价格"` as a price): the
//! tests keep those as hostile input.

/// `alibaba.product.list.get`: the envelope a public Python client's test calls "observed"
/// (`test_1688_product_list_accepts_observed_page_result_envelope`; the code index did not
/// name the repository). Its ids are placeholders; `modifyTime` is absent, `lastUpdateTime`
/// carries the time. Verbatim apart from JSON syntax (Python `True` → `true`).
pub const PRODUCT_LIST_PAGE: &str = r#"{
  "success": true,
  "total": 1,
  "result": {
    "pageResult": {
      "pageIndex": 1,
      "sizePerPage": 1,
      "totalRecords": 2,
      "resultList": [
        {
          "productID": "PRODUCT-REAL",
          "subject": "测试商品",
          "status": "published",
          "lastUpdateTime": "20260902120000000+0800",
          "skuInfos": [
            {
              "skuId": "SKU-REAL",
              "price": "12.50",
              "priceRange": [{"startQuantity": 2, "price": "11.00", "ignored": "drop"}]
            }
          ],
          "saleInfo": {
            "quoteType": 3,
            "priceRanges": [{"startQuantity": 2, "price": "11.00", "ignored": "drop"}]
          }
        }
      ]
    }
  }
}"#;

/// `alibaba.product.get`'s `productInfo`, from the same public test file
/// (`test_1688_detail_endpoints_accept_observed_response_envelopes`): the fields a list entry
/// shares with it (`skuInfos[].amountOnSale` as a string, `saleInfo.priceRanges`).
pub const PRODUCT_INFO: &str = r#"{
  "productID": "PRODUCT-DETAIL",
  "subject": "真实详情商品",
  "status": "published",
  "lastUpdateTime": "20260903121000000+0800",
  "skuInfos": [
    {"skuId": "SKU-DETAIL", "amountOnSale": "8", "consignPrice": "88.00", "ignored": "must-not-return"}
  ],
  "saleInfo": {"amountOnSale": "8", "invReduceType": "2", "priceRanges": [{"startQuantity": 2, "price": "88.00"}]}
}"#;

/// `product.search.querySellerOfferList`: the output sample of the platform's doc page
/// (open.1688.com `api/apidocdetail.htm?id=com.alibaba.fenxiao.crossborder:product.search.querySellerOfferList-1`,
/// from a stored copy), verbatim.
pub const SELLER_OFFERS_PAGE: &str = r#"{
  "result": {
    "success": true,
    "code": "状态码",
    "message": "提示",
    "result": {
      "totalRecords": 123,
      "totalPage": 123,
      "pageSize": 123,
      "currentPage": 123,
      "data": [
        {
          "imageUrl": "图片地址",
          "aigcImageUrl": "https://",
          "subject": "中文标题",
          "subjectTrans": "外文标题",
          "offerId": 2,
          "isJxhy": true,
          "repurchaseRate": "10%",
          "monthSold": 1213,
          "traceInfo": "object_id@620201390233^object_type@offer",
          "isOnePsale": true,
          "priceInfo": {"price": "10", "jxhyPrice": "10", "pfJxhyPrice": "10", "consignPrice": "10"},
          "createDate": "2021-04-08 08:00:00",
          "modifyDate": "2021-04-08 08:00:00",
          "isPatentProduct": true,
          "offerIdentities": ["select-跨境select"],
          "isSelect": "true",
          "token": "abc",
          "promotionURL": "商品详情页链接"
        }
      ]
    }
  }
}"#;

/// `product.search.queryProductDetail`: the output sample of the platform's doc page
/// (open.1688.com `api/apidocdetail.htm?id=com.alibaba.fenxiao.crossborder:product.search.queryProductDetail-1`,
/// from a stored copy). Trimmed: shipping, seller data, certificates, invoice and the other
/// blocks the parser does not read are left out; every field kept is verbatim.
pub const OFFER_DETAIL: &str = r#"{
  "result": {
    "success": true,
    "code": "200",
    "message": "成功",
    "result": {
      "offerId": 34513534353434,
      "categoryId": 32,
      "categoryName": "裙子",
      "subject": "猫砂盆超大号防外溅猫厕所加高巨无霸开放式宠物用品厂家直销批发",
      "productImage": {
        "images": ["图片"],
        "whiteImage": "https://cbu01.alicdn.com/img/ibank/O1CN01pEsVS41Bs2uny9oka_!!0-0-cib.jpg"
      },
      "productSkuInfos": [
        {
          "amountOnSale": 123,
          "price": "价格",
          "jxhyPrice": "精选货源价格",
          "skuId": 123,
          "specId": "specid",
          "skuAttributes": [
            {"attributeId": 1, "attributeName": "1", "attributeNameTrans": "1", "value": "1", "valueTrans": "1", "skuImageUrl": "1", "skuImageUrlTrans": "1"}
          ],
          "pfJxhyPrice": "1",
          "consignPrice": "1",
          "cargoNumber": "1",
          "promotionPrice": "1",
          "fenxiaoPriceInfo": {"onePiecePrice": "15", "offerPrice": "12"}
        }
      ],
      "productSaleInfo": {
        "amountOnSale": 99999,
        "priceRangeList": [{"startQuantity": 10, "price": "10", "promotionPrice": "9"}],
        "quoteType": 1,
        "consignPrice": "1",
        "jxhyPrice": "1",
        "unitInfo": {"unit": "盒", "transUnit": "Box"}
      },
      "isJxhy": true,
      "sellerOpenId": "23tsdvcdsjngp3oj4j3i5",
      "minOrderQuantity": 1,
      "batchNumber": 200,
      "status": "published",
      "soldOut": "12342",
      "createDate": "2024-05-24 00:00:00"
    }
  }
}"#;

/// `gw.QosAppFrequencyLimit` as public clients' tests record it (a TypeScript MCP server's
/// test "gateway error_code is an error result", and a Python test of
/// `alibaba.trade.fastCreateOrder`; the code index did not name the repositories).
pub const GW_QOS_LIMIT: &str =
    r#"{"error_code": "gw.QosAppFrequencyLimit", "error_message": "App call exceeds limited frequency"}"#;

/// `gw.NoUsageLeftError` with all three text keys, as a public Python project's quota test
/// records it after `HTTP 400` (repository not named by the code index).
pub const GW_NO_USAGE_LEFT: &str = r#"{"error_message":"SLA bill has no usage left","exception":"SLA bill has no usage left","error_code":"gw.NoUsageLeftError"}"#;

/// `gw.APIACLDecline` on `HTTP 400`, as a public adapter's test records it for
/// `alibaba.product.get` (repository not named by the code index).
pub const GW_ACL_DECLINE: &str =
    r#"{"error_code":"gw.APIACLDecline","error_message":"AppKey is not allowed(acl)"}"#;

/// A business error with `success` and `code` (`wzhsh90/go1688`, `models/response.go`, the
/// comment on `BaseResponse`: the answer of `alibaba.trade.pay.protocolPay.preparePay`).
pub const BIZ_SUCCESS_FALSE_CODE: &str = r#"{"success":false,"code":"500","message":"不是自己的订单"}"#;

/// A success that carries a message (`wzhsh90/go1688`, `models/response.go`: the logistics
/// trace API when there is nothing to trace).
pub const BIZ_SUCCESS_WITH_ERROR_MESSAGE: &str =
    r#"{"errorMessage":"该订单没有物流跟踪信息。","success":true}"#;
