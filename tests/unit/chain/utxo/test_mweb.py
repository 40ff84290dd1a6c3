"""The MWEB transaction parser (chain/utxo/mweb.py) on real regtest transactions.

The three transactions were captured from ``litecoind`` 0.21.2 (regtest, MWEB active) with
``getrawtransaction <txid> true`` while in the mempool; they form a chain: the MWEB-to-MWEB
transaction spends an output of the peg-in, and the peg-out spends one of the MWEB-to-MWEB.
The node's txid, wtxid ("hash"), weight, vsize, kernel and output ids are kept beside them, so
the parser is checked against the node without running one.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from blake3 import blake3

from cointrail import decode_tx
from cointrail.chain.utxo.mweb import (
    decode_mweb_tx,
    mweb_tx_id,
    mweb_weight,
    parse_mweb_tx,
    pegout_weight,
    read_varint,
)
from cointrail.chain.utxo.reader import ByteReader
from cointrail.errors import DecodeError

PEG_IN_HEX = (
    "0200000000090185a8f9eb879a998144c800f54aeec49f333c64c4158f867898286c90de0055ae0000000000"
    "feffffff012276814a00000000225920fd40387c8b160846d699cce221b47400061105ee543d8893a8f614ae"
    "364b54d20247304402205dbf052d7ad9754978eee3f2c7918dc51dac0f41bb672c76687343a39e343c7e0220"
    "24ee6252117d7f296b6cabc5fc65b9397f469590855ac382e1d1f212f2797911012103c05cfd574880216acd"
    "383e914ed2bbf7a9508b621f3a1149eaf77d52547b43fa01f9358eaddacd37d00693f679155560ff2f207569"
    "8940ad915843f037df4953cfb7b3a0264a06f88073280f3f8251d6a7c4e348050dc5a4086e25224a7f216aa7"
    "0002094cd896762a5700064f55fc88dc92258165961e95b0a0c69691326569a6eecc2903316e322976a337b7"
    "117726808f5f3e0282b0728df3c6dcf8b22e31e0d7876ed30315835d6ce1c65825b89f21cc781de05e38edd9"
    "cd5b6694cb4032b98eeb07e29c01039a62b5b32a19922b21a635db37e546868e40073f412bd039d3392961ed"
    "98c8b9c14d9e402b78b4ae5119a30ebc18e4da1a692cf45f1aad330c28bd34670c8b711ea66f4b7672953d1a"
    "96fc7f7a91f5b76c4f034114c92691986ea899bad6ca44628956674b5450816bf457ea7c9926dfeeb91dcdd7"
    "4c8f0292017a914744958b0c855ce32faf2e252a0b42dfc762e39bbc14800cefc02817ced1a885ea0cb523de"
    "ed435c56b374b10354ec26cbee8423537820f6e26b79c6b46abf9a2c7abc7d970802538c1466227a1fc07956"
    "0859df30813a5e2b21216d6f1ca9a4d20b857be5e9f71f31189ca6aa2157a8ff7d87f416283dd7f6789d2e98"
    "13575fae29569c1694e0dea366cd1628afc77fac5a6982b2b5baa2f57d8ac400a7b880e59a01e46c75165158"
    "5fc8b8ff387cbfb6df008aafe7575491a1e78415f8c15b391b2c451b8ee95d8e1a728b8460a5df35d51437ca"
    "365c34bb7f5473aaef48ebc0d5b80a0c795b72ae203ef91c6adb9b685e0ff2901681676c20324685addcfedc"
    "969ac536390dd0a22d2ac5e77a939dd92004c44239395e488c218d8d0e0b00f9a1262bdd7ec740da45e3ca3b"
    "472f2d5b70ebdd058d44ef14cb97fedab744f5d11d738bc14f19008c782e2e682f54cf4429b60fe319286d8a"
    "146fa9ba0120c21ff23247ce575186d4c8c21d33adc45f9d02178798939b64f6f489d4f73709fffba8d4d8c1"
    "587ccacdd59b65ac1e3417409997586595e745fad8fe6751573cbb5ef09fb5078c17621288e57423e8afae7f"
    "77cc6fc6797de60e410ec12fa86fd3f9febb354d094c393e5adbf48a1cda6b4060abaefba806f4b5c06cb884"
    "15fdf7b52d43f5814f9c2a8c168566ba4c4239316371692b703b2750590a7a8c97eed875d15449cc1c3cc30e"
    "e080f49a95a789324c74364d74756ddb097903c405a08db0d1e994202105aa27badda3addd89d558e4af25f2"
    "cd7f6282cfe942b51e5bd921be29f62def195a721073726dc5c42d49d9f8cad3450e0d6191d22031c299bafa"
    "d93d29dfa2baa4fe5478e7a442ee8a7fc3f3b026bce305b1b310520d40cc6bd1f8ecb86e64e994361f6a763d"
    "b9467655324c7d2a0a46230f2b9133c9732fb8080aea213d636435e475109b480ebb0651900514e03bcce7d1"
    "eaf320bea651384702409cf82c08bceb21d3a2f4f541773e0ba0ff870033f1bdd794c737403acf96850216cd"
    "782a1e917e3ea2a64705c13766cf6fac4a663eeacbb7e926d016bcf961630103d40d5ffe6fe07739d0243fec"
    "36f5c81c1f314d1f93cdae41f6289ba3678ee3c4231160434fb7eb6138420004bee686fb3c98ab6db0a8b9b0"
    "83d018594c6d940f7637b2a013f7c864b14f6d6f8d3e96384cdec66556fe635c446c8d1e61a3584930fc230e"
    "d87145576e9c6e4a6290f2479174dd411714da7a4309b894bfa3b62a3f028d08ac7e152e7171437a0b582c88"
    "4aa807ef3a1bd79a253707e40d25d475e6263388d107fc9912b7e8b8d5eb46cf624f235cf4e259acf2787511"
    "9df17e8bc73c2efe4fab216176689d142f5448e3ca0ad1620c93954516b827c30c8c68d8ac9efb0a2cc963a4"
    "3ff32a93f81c2d9a8a0b02c2fbe3eee9dc455aeec5c87fa0679589caca95f4cae7f6e193586ca1f4f7683874"
    "c3bdf24e8a6eb7160042626f70aa04f5eafbcd5d0b23014a43b928e46deeb3b3cfc41099ada152e965dbb024"
    "4d9e7782a44a84cc43e04aa35441ba8f69b2a25559f9b716a8af7dfd747bb89620653e7b177f950a4e869eaa"
    "6b3395387e3b23cb89c4363ee920fe722e5895fa653a1ea9eae11e64f89f57d09898fd380a5fea2984b68374"
    "0ad88a01fc5139f88e3ea1f3a45e24c9361bcf351a726d3cd90d4c80770d2d60acc977d24817a1a33d29e465"
    "ddfeeef76a7c2ea21338c672bb61ce826c2966217917163cdaddcec2f24316cec2613f33906ba0cdc97af6c9"
    "9ae31a2d5bb0a5a0e293d84a489f74236eec53fb453fa62cb1a3c15432edde29de317faa06f8c3858fcd5d04"
    "d213abe32fbbe4f6adca5783da2f0ef5862a4ecfef6fd3eef31336ad399bbaa30ec9b43c0a320460bd6a6a32"
    "b3648c671a199c3f21f86e6a88212ad355632ca652f49b205c37894fbcb0cb22d6f4971eb8317f9e1e02666f"
    "dd2d3dc23a1b726d64fae6e5c9d91202a9f7274090810310bc67ef1d1509155c3b010e586e5eb2a3f117ca36"
    "4fe91a2a632eff26916f343854b57f19ed3d7f330bbe32ae96d5aca1f3333a754377926a5167e256fac4423a"
    "b9d651069f7a9d440f796533712a1764bf8d74deff7c63bca2fc7a6f05628edd1a548d49d3036f0cb049d552"
    "df3e14aaf1cb7fdf59994e05589aca52db0cffa35efe0f5b3f37a7469002322ae036326201139d3c83d384eb"
    "22022cfdde6239e94dd7f1b7eb87a9103ee082d7ef852c7be63fd7db2205d677ccf8086b90019fd552880b55"
    "3eae5cf0cdb13fd750222b8e49609cfeec2d79e72e98d1e58b3d2e160565f7f3bc01009e76c2a3d3be07e2d1"
    "0b337b1ee439067c9086baeead9a95f68f92e91eccf3b932c484207c4f429a3489ffb13a4868ab91abc7eeaf"
    "010000"
)

MWEB_TO_MWEB_HEX = (
    "020000000008000001829c1d33794ff859fc82a15153a71c2a191558c41502b4bba16bd391fbf1944896c1fd"
    "b7ddfa2aaaca3a4cbee96121f69d928a5dafcdc4fae3d0e4e4024f49e3010116a9b471a0baf16221489cf4ce"
    "a002519260bda5cacc5ea7f8275a91c34c9ac0094cd896762a5700064f55fc88dc92258165961e95b0a0c696"
    "91326569a6eecc290315835d6ce1c65825b89f21cc781de05e38edd9cd5b6694cb4032b98eeb07e29c02ca0d"
    "8f29dfafe1ba2033f7acc63bfe2f0ae89e04fb7b0668f07cfd9918becc29cefa80c421fb89ef535d5e9b7c1e"
    "91857a57be69640b9ec5796819fdd98b41bd4e83b24d6d64f09c452c311dc3e8f4cf2b811f08e4c3b12313bf"
    "0404c784dfbb0208320e3643aa7cc24865d1d64046fd70f6ac3503697be021682b361263a075894e035e1514"
    "85e629e2dc708ab1774121518e3723e143427510984e0f36311d165e4d03d086e5ac7be05f93c542a06a0599"
    "42e80a526c33cfa82f7d46fe0b16501ffdae0102dc44e98ff36c6545880ee100929964993d62dc9bee704161"
    "a71b6d0a277dc0b681d5bb35353879f0fef758189f63b83040d0729cdccddd84d6528a1e4eeb698887d22b81"
    "3a747d2d86db395f5cc87d1c9373720d6d975679a937abdda486e7c3be1263960d1b6a7b8b2e6a2df478899d"
    "1da6a2242a5f1ab32d0a9bafecdaf38061c6ae89d63dbf3d65f57aaca8297311b28a13d0831d2a1c4dfe8336"
    "c3c828a038fa62d99c7e07233fddca7462dc9d69cbe3e699e30eaedf0a7afb905a75d8713b9767042202988c"
    "d9493aba7397a347e563468ea7bcf6bced12c8d2e22a028bdacd285a38db006ecdaaf38370ff2ccd097082b1"
    "ca846385acf286199ce1dd752346c6b94346275f68a9ebddf08c04cc09d09decb70e006f39792c1557988021"
    "67c3042452acf9ec85f8b34c860afd7bf2ab1e77274df82188f49081ca773e25b2546b18895a023538eb38be"
    "6120c036145795762493a9bd6e0a245b381bad1ff296acb585416efa45c807885c69c430637f52192b02364d"
    "64f5b020aa7532a8e5990ef13315529d925da9d4b83a5d5b9b49ad197cbc35efcd08ef0367f5e021f67564b9"
    "a04d78ba84e05aedc19378f49886a84c1194f863a93f1bcb10290f4eb03705b66e39e29d3c96099de885e3ee"
    "985c8268fb12aeb5a1259ded30806a6bd36924fab9a70240b78e80730deb933aaa5769823f12b0b43bf7f315"
    "56a471bf14014aa3807636fc5aacb43d34d01e9ef3a66f81c1c4d65e5a52b83c8cb23706eb4b915d7ef0cbe8"
    "e12dc7f61dea188554d0a963d56a83f4137b43167d2c5db721fd3f9771124bf9f68d71083d6227e986f5a343"
    "e75b81de65fd4c4bd55eab6f23ab9dbb247e677dcfc3b9d49ed557fe2337cc3fb1baec6cec95ce4e9dff60a1"
    "7789786055c346fde984e1b65c33ea7c75d328561baad2bc5ae8c056e64f400d8a2935d3311442e3425d423b"
    "2783386617819d6f67414d423e50b582ca36262cd16ba2470d0a45cd030599b75cc7ad96902351274b578cc3"
    "21671977732a1304091b6f307e1ef479780dd7ca7ed48ceb97479780828b0909a8df5fb5cb6cd49b692a9313"
    "f5336c55f2e38ed3670d077a85562c0f36a4345b18a706dd09e74e995eb518a9b9a35f6ea36bcf54fab3ff38"
    "e7a6c135ebc78fdb0cdd8fba46037e30faf81b14459dda5f332413845171553ba46b891916a78a122e0f8c8f"
    "c38103433aa153b63b36b62f41498ccdbe8169e104c08678f0fdf287140f9e562795bc01030990fe6961af51"
    "a5837fadc7cb172a51378721b132252eccff189e3c65168fafaea03b9b680df7d8f7d44c3958db80b9dd41d1"
    "65783ad4942587b8be5cf53e264b9967dcdef0bd785a8b7c78e0e229ad616d2f1411367838bbcf3a32340c3c"
    "ec1b8f4b78a901de488e0fcbc2f99e7f8fd193ccb7c601393b7806ae5be3234000802de241d79b8066715a6b"
    "4ebdd95d5815a5da15efd7088de7d322e37dcdc5616979f0f14980939229653310b01c489a78877a9dedc419"
    "fb511f2a1d31ad41c790b49cbef1bee82b58d93d3f825d770099cdb655a9c07965f2db98d71037362baa8134"
    "3bf2fde9120031146e884ccb6e2345db510d6b3939ad05624c07af92f84ed81d26767021ae968a3c5faa591d"
    "025f10448c77fa87d2ec8caa46be8ba2546b23d92d1f9863d81fb4bbf2f6ae00a613b29ff9ea3e7c08b16270"
    "e63dafb9ab38d87f635259e5cd16ec6723a00d2921adacd589367f755a2feba998c3de57d855ff55686998ce"
    "4109d38ebc6a38b819930e2e5504d8dc76b8f66ddb9b80f609eda227ff16026a2a1aca643a5ee7fb6f8bfdc0"
    "4478f55f737ab1b4004e2f8f9d2c0dbf6031e1583e3cd3c544060ba77a3a0eb26b736783d4e8d5f2d37654eb"
    "ce43600729fe385e78d75e139dfdc28809649a08428f7e7cfef33544d6fdcbaf3dc5b6f1801fa4952ddc744f"
    "33ef131dcd69b64614e240867a06d2caffecfe95a549a03373fda6227150f411c01c083f2d327861f69ef20c"
    "22cfcae85fb01137be8d8956f2406baa8e661f306842172669422d2988538e6a971b840d1da66ecdad72ca7b"
    "76e5598cfaaaf30e0487c88ee9b1bf3cc64c932f52119a03cabbe56cff5ed727ac07a887ad0028e341ee25e4"
    "443cc3727acb7852e47af2b93a90982d1e5fac0fda4ea0726585abaf051245802dae483038e60075f4cff42a"
    "8e2fc902f73a6bd12b40ff13437aa3800be0080f4b8c528ed8d37b797ddfce229063a15e62f69391350f45cc"
    "4ee6ccd057f74c257fc430823cf559fd176a9c2f4f0b7a98d59ee6e9de4a7115a0040ae9a30ad86d0aeadc31"
    "05b2ccbc72a232ec89363bb7b5708b147e45790528297cb1028679d7ef6bf02fa99872ac94a72ef55e01119d"
    "3c0299c09deea4a3c71a9ad0bc24c0c84ea73efceb92762dac6481e78a3ef61a5254095feb40c86195a1a21b"
    "a423bfccccdecb6ba7c45a7a1d9a17aaac9b57dd10cfa6016f3c454c977bea26e58c51d54dcb55f64ecce78f"
    "1960cde41088f199f72a445233c77527b0019550f9326d25306db1d306292ebe4af49c5c326c88c5d4da82b0"
    "010000"
)

PEG_OUT_HEX = (
    "0200000000080000011f28684f4cdbb7e656ccf3bdb94522b959a474db02b42aaa27c946d4b3a24269358a48"
    "a01483f41d016983fa8dad3f27796966c692b5adbcc0e84f9c21fe734a010158ddb813e670ab751e0f6bac43"
    "77e2ae4252036298228cc26007e9023f2f424b08320e3643aa7cc24865d1d64046fd70f6ac3503697be02168"
    "2b361263a075894e03d086e5ac7be05f93c542a06a059942e80a526c33cfa82f7d46fe0b16501ffdae038104"
    "a9f7603422ad6e1270a22e8888d0153eec0260246c9da439b516a33765c7bf35bbf6bb92b0449c2137b5f5af"
    "ca03fbe1a60334caf43fde50625179e718b2a4351f77c69c7ab53ae5ede2c44a983eb9808f5fbc304406979a"
    "9903488de6db01088fe58dc6e83c45fc774ac21a1e42dea5adb42400781d29db560227730ceaf9ed034d6ff9"
    "02ebbb7f94ca149dc6367704ae7817a9d468b7c81b8da32c8df5ea14eb020b75ac088726357832270ebb613a"
    "49f99a9fa8ba1d2f920be931239e2056ba710103024304e3760716fcc7e2c4307d66bc8f8aded7584f997f92"
    "cde35e4957efdfdb3b3dcb1f3c526edd45faf5d287d70dcdb4f34be35dbeb559448e5750a93fc448d2b9abe7"
    "33c77682d9755d17516627b7bdacaf36cb643aa09622d5d7159827e2669af6b862efb59d3635a0a84be5f1f0"
    "aa1044778a8401995c02cddb8c566f915d93d75570b00f874e411cc128573e38115eef9f00963d59a4e9e408"
    "6242e21f4e49d0c96073d9f3dbb92315c6e827509e53c09e7ea47177e536a58c9f81e546f1fa03f9cdef3135"
    "af5a24e834d9ef167378424470a0c51acc8350cf3cb790aa59dfef701c4e36f9b1d2a82891390bb17049831f"
    "4b205d943708b3e1ba4efdf6165d43fdf163b56a4ac5807065734dea512f5a45d74ce4123533b74bf5f10b08"
    "72219258760aa1ff90edfe3dbd42a0d9716bb90d0a6c9a4d22dc4d289e243a56f1f9c4fd16eacdb3e7f39281"
    "5ec9a3eb95ada29cdf29b02787141b7976c886f65f512c217d5adc6a44f1b50068247fe57b30e9739da2727a"
    "8a8f62cee41bb67858a05a069738d8c410f3d92e9cfb5d052773559db25677866528fd0101ae93c45cafacf0"
    "cf16c8940cc7cba04589ab7a197e47fa3108e4ee2ca88e580ab660ee447c9bb1c79e2f0efe7249114830debf"
    "c26a4baf8fcbc5f43429cca4a53ad2bc247bb0379b931e0d279b747f3b0a2c9350ced5d951643d6177882d93"
    "427918c612e0887df31c2f2cedcb8ab494be3b32bc0a7ecc7f7f80fa590ce6bcfd61d4b87b660892f9006b6d"
    "760a03b89a9c7e466b0ec84d251886a2dde46a37aa1fa0552306cc0c49061718fccb55482cf26946b271aa6a"
    "c1877a89f3282fb97bd1878897e86228e71c9e222aff4fcc6bbd3ab8b3a4431b4983c65669aaf663b09197db"
    "64e3c59d3f69a5322568ff368a0eb26c04967811d593b544f8f873f906993cfd90cbc0ba7376f77e23fee17f"
    "63e56538c2e37b4e799a64f083b3b70827af1d668774342720ad1d17302ca7d6c7b63f2e8f1fcfdbe4aeaff8"
    "dd68acc123d81be8834c34d536568da6488419792f0e6fece4d1992b95246d950eb391da4990df4a03a46e3b"
    "1ef22aa7af050cce23af1cc1270aba3625777d5e73f84d150115926c01aed6c1001976a914580cd02d664eff"
    "73a3e398da3a6344c6767b57f388ac0283a172cdef7aa17c1e8c64f4e454ac63cdc3d2974168e50553729707"
    "bb7a0a7508787485b05882d10d6aff409f74c65e4ade4a8fdd3600b0b7dd1dbe3509ce84b35baa95ef3d5bbe"
    "f6e33e7e203a70585bd03988bd15093144f0c302dff5aec9d4cc7c56d8f732b2a4eef74369102bfb9f227dc8"
    "eaaec5d1408cf52f974f510be9b1010000"
)


@dataclass(frozen=True)
class NodeView:
    """What litecoind said about one mempool transaction."""

    name: str
    hex: str
    txid: str
    wtxid: str
    size: int
    weight: int
    vsize: int
    mweb_only: bool
    kernel_ids: tuple[str, ...]
    fees: tuple[int, ...]
    pegin: int
    pegouts: tuple[tuple[int, str], ...]
    spent_ids: tuple[str, ...]
    output_ids: tuple[str, ...]


PEG_IN = NodeView(
    "peg-in", PEG_IN_HEX,
    txid="b1645ed2eee626ac8c194f8c0c008223c52a5c19ff1cb3742394ca956c9280be",
    wtxid="6bdd1f4dbe8f7976e6539c2f5f22d9dfc2f41e2a93f5fb69523d3d528aaa6b6c",
    size=2203, weight=649, vsize=163, mweb_only=False,
    kernel_ids=("fd40387c8b160846d699cce221b47400061105ee543d8893a8f614ae364b54d2",),
    fees=(3900,), pegin=1_249_998_370, pegouts=(), spent_ids=(),
    output_ids=(
        "16a9b471a0baf16221489cf4cea002519260bda5cacc5ea7f8275a91c34c9ac0",
        "d6fe99dbc99dc3a21610eef55f6464eb7f3762136401f672b52d0f272c535284",
    ),
)
MWEB_TO_MWEB = NodeView(
    "mweb-to-mweb", MWEB_TO_MWEB_HEX,
    txid="a002e0c5902d53ca66b3f27ebba9f325fbfb369cc2c86ae4726c86ad769f198c",
    wtxid="a002e0c5902d53ca66b3f27ebba9f325fbfb369cc2c86ae4726c86ad769f198c",
    size=2203, weight=0, vsize=0, mweb_only=True,
    kernel_ids=("8c199f76ad866c72e46ac8c29c36fbfb25f3a9bb7ef2b366ca532d90c5e002a0",),
    fees=(3900,), pegin=0, pegouts=(),
    spent_ids=("16a9b471a0baf16221489cf4cea002519260bda5cacc5ea7f8275a91c34c9ac0",),
    output_ids=(
        "58ddb813e670ab751e0f6bac4377e2ae4252036298228cc26007e9023f2f424b",
        "657a96a725c039d7c48d5d8c2dcc7b01e999ca5655fb047d59ccbadfb2b243ea",
    ),
)
PEG_OUT = NodeView(
    "peg-out", PEG_OUT_HEX,
    txid="55929925604f0e0f8451bde76407ccfc949e75a681f5935a375e57bb5a3bd05c",
    wtxid="55929925604f0e0f8451bde76407ccfc949e75a681f5935a375e57bb5a3bd05c",
    size=1337, weight=136, vsize=34, mweb_only=True,
    kernel_ids=("5cd03b5abb575e375a93f581a6759e94fccc0764e7bd51840f0e4f6025999255",),
    fees=(2540,), pegin=0,
    pegouts=((100_000_000, "76a914580cd02d664eff73a3e398da3a6344c6767b57f388ac"),),
    spent_ids=("58ddb813e670ab751e0f6bac4377e2ae4252036298228cc26007e9023f2f424b",),
    output_ids=("679e60ccbd5bf1513184deb02d6acd8faa10c2b7360bd09b99629b324c708aa3",),
)
CAPTURED = (PEG_IN, MWEB_TO_MWEB, PEG_OUT)
IDS = [c.name for c in CAPTURED]


def mweb_body(raw: bytes) -> bytes:
    """The serialized mw::Transaction of a standalone transaction (after the presence byte)."""
    tx = decode_tx(raw, "litecoin", "regtest")
    assert tx.mweb_data
    return tx.mweb_data


def canonical_weight(raw: bytes) -> int:
    """BIP 141 weight of the transaction serialized without MWEB data."""
    tx = decode_tx(raw, "litecoin", "regtest")
    return tx.base_size * 3 + tx.size - tx.mweb_size


def varint(n: int) -> bytes:
    """Bitcoin Core's WriteVarInt, written out independently of the code under test."""
    out = [n & 0x7F]
    while n > 0x7F:
        n = (n >> 7) - 1
        out.append((n & 0x7F) | 0x80)
    return bytes(reversed(out))


@pytest.mark.parametrize("node", CAPTURED, ids=IDS)
def test_parse_matches_the_node(node: NodeView) -> None:
    raw = bytes.fromhex(node.hex)
    body = mweb_body(raw)
    mweb = decode_mweb_tx(body)
    assert mweb.size == len(body)
    assert tuple(k.kernel_id.hex() for k in mweb.kernels) == node.kernel_ids
    assert tuple(i.output_id.hex() for i in mweb.inputs) == node.spent_ids
    assert tuple(o.output_id.hex() for o in mweb.outputs) == node.output_ids
    assert tuple(k.fee for k in mweb.kernels) == node.fees
    assert mweb.fee == sum(node.fees)
    assert mweb.pegin_amount == node.pegin
    assert tuple((p.value, p.script_pubkey.hex()) for p in mweb.pegouts) == node.pegouts
    assert mweb.lock_height == 0
    assert all(o.has_standard_fields and len(o.range_proof) == 675 for o in mweb.outputs)


@pytest.mark.parametrize("node", CAPTURED, ids=IDS)
def test_txid_and_weight_match_the_node(node: NodeView) -> None:
    raw = bytes.fromhex(node.hex)
    mweb = decode_mweb_tx(mweb_body(raw))
    if node.mweb_only:
        assert str(mweb_tx_id(mweb_body(raw))) == node.txid == node.wtxid
        assert str(mweb_tx_id(mweb)) == node.txid
    weight = mweb_weight(mweb, canonical_weight(raw), node.mweb_only)
    assert weight == node.weight
    assert (weight + 3) // 4 == node.vsize


def test_pegin_output_commits_to_the_kernel() -> None:
    """The peg-in's canonical output is witness v9 whose program is the peg-in kernel's id."""
    raw = bytes.fromhex(PEG_IN.hex)
    mweb = decode_mweb_tx(mweb_body(raw))
    tx = decode_tx(raw, "litecoin", "regtest")
    assert tx.outputs[0].script_pubkey == b"\x59\x20" + mweb.kernels[0].kernel_id
    assert mweb.pegin_count == 1 and tx.outputs[0].value == mweb.pegin_amount


def test_body_weight() -> None:
    """libmw's Weight::Calculate: stealth kernel 3, standard output 18, plain input 0."""
    bodies = [decode_mweb_tx(mweb_body(bytes.fromhex(n.hex))) for n in CAPTURED]
    assert [b.body_weight for b in bodies] == [3 + 2 * 18, 3 + 2 * 18, 3 + 18 + 1]


@pytest.mark.parametrize("node", CAPTURED, ids=IDS)
def test_every_truncation_fails_cleanly(node: NodeView) -> None:
    body = mweb_body(bytes.fromhex(node.hex))
    for cut in range(len(body)):
        with pytest.raises(DecodeError) as info:
            decode_mweb_tx(body[:cut])
        assert 0 <= info.value.offset <= cut


def test_trailing_bytes_are_rejected() -> None:
    body = mweb_body(bytes.fromhex(PEG_OUT.hex))
    with pytest.raises(DecodeError, match="trailing") as info:
        decode_mweb_tx(body + b"\x00")
    assert info.value.offset == len(body)


def test_parse_at_an_offset_reports_offsets_in_the_buffer() -> None:
    raw = bytes.fromhex(MWEB_TO_MWEB.hex)
    start = 4 + 2 + 1 + 1 + 1  # version, marker+flag, no inputs, no outputs, presence byte
    r = ByteReader(raw, start)
    mweb = decode_mweb_tx(raw[start:-4])
    assert parse_mweb_tx(r) == mweb and r.pos == len(raw) - 4
    with pytest.raises(DecodeError) as info:
        parse_mweb_tx(ByteReader(raw, start, start + 100))
    assert info.value.offset >= start


def test_hostile_input_count_fails_fast() -> None:
    body = bytes(64) + b"\xff" + b"\xff" * 8 + bytes(200)
    with pytest.raises(DecodeError, match="MWEB input count") as info:
        decode_mweb_tx(body)
    assert info.value.offset == 64


def test_a_transaction_needs_a_kernel() -> None:
    with pytest.raises(DecodeError, match="no kernel") as info:
        decode_mweb_tx(bytes(64) + b"\x00\x00\x00")
    assert info.value.offset == 66


def _kernel(features: int, middle: bytes) -> bytes:
    return bytes([features]) + middle + b"\x02" + b"\x11" * 32 + b"\x22" * 64


def test_several_pegouts_and_their_weight() -> None:
    p2pkh = bytes.fromhex("76a914") + b"\x33" * 20 + bytes.fromhex("88ac")
    p2wpkh = b"\x00\x14" + b"\x44" * 20
    pegouts = b"\x02" + varint(10**8) + b"\x19" + p2pkh + varint(5 * 10**8) + b"\x16" + p2wpkh
    kernel = _kernel(0x05, varint(2540) + pegouts)
    mweb = decode_mweb_tx(bytes(64) + b"\x00\x00\x01" + kernel)
    got = [(p.value, p.script_pubkey) for p in mweb.pegouts]
    assert got == [(10**8, p2pkh), (5 * 10**8, p2wpkh)]
    assert mweb.kernels[0].kernel_id == blake3(kernel).digest()
    assert pegout_weight(mweb) == 4 * (8 + 1 + 25) + 4 * (8 + 1 + 22)
    assert mweb_weight(mweb, 1000, mweb_only=True) == pegout_weight(mweb)
    assert mweb_weight(mweb, 1000, mweb_only=False) == 1000 + pegout_weight(mweb)
    assert mweb.body_weight == 2 + 1 + 1


def test_pegin_weight_counts_each_pegin_kernel() -> None:
    kernels = _kernel(0x03, varint(100) + varint(10**9)) + _kernel(0x02, varint(0))
    mweb = decode_mweb_tx(bytes(64) + b"\x00\x00\x02" + kernels)
    assert mweb.pegin_count == 2 and mweb.pegin_amount == 10**9
    assert mweb_weight(mweb, 500, mweb_only=False) == 500 + 2 * 164


@pytest.mark.parametrize(("features", "empty"), [(0x04, b"\x00"), (0x20, b"\x00")])
def test_kernel_id_leaves_out_an_empty_list_as_core_does(features: int, empty: bytes) -> None:
    """Kernel::Serialize writes peg-outs and extra data only when non-empty, so a kernel whose
    feature bit is set over an empty list hashes without the zero count."""
    kernel = _kernel(features, empty)
    mweb = decode_mweb_tx(bytes(64) + b"\x00\x00\x01" + kernel)
    assert mweb.kernels[0].kernel_id == blake3(kernel[:1] + kernel[2:]).digest()
    assert mweb.kernels[0].pegouts == () and mweb.kernels[0].extra_data == b""


def test_optional_fields_by_feature_bit() -> None:
    stealth = b"\x03" + b"\x55" * 32
    kernel = _kernel(0x3F, varint(7) + varint(8) + b"\x01" + varint(9) + b"\x01\x51"
                     + varint(1234) + stealth + b"\x02\xab\xcd")
    inp = b"\x03" + b"\x66" * 32 + b"\x08" + b"\x01" * 32 + b"\x02" * 33 + b"\x03" * 33
    inp += b"\x01\xee" + b"\x04" * 64
    out = b"\x08" + b"\x05" * 32 + b"\x02" * 33 + b"\x02" * 33 + b"\x02" + b"\x03\x01\x02\x03"
    out += b"\x06" * 675 + b"\x07" * 64
    mweb = decode_mweb_tx(bytes(64) + b"\x01" + inp + b"\x01" + out + b"\x01" + kernel)
    k, i, o = mweb.kernels[0], mweb.inputs[0], mweb.outputs[0]
    assert (k.fee, k.pegin, k.lock_height, k.stealth_excess, k.extra_data) == (
        7, 8, 1234, stealth, b"\xab\xcd")
    assert k.pegouts[0].value == 9 and k.pegouts[0].script_pubkey == b"\x51"
    assert i.input_pubkey == b"\x03" * 33 and i.extra_data == b"\xee"
    assert i.output_pubkey == b"\x02" * 33
    assert o.features == 2 and o.key_exchange_pubkey is None and o.extra_data == b"\x01\x02\x03"
    assert not o.has_standard_fields
    assert mweb.body_weight == 1 + (3 + 1 + 1) + (17 + 1)
    assert mweb.lock_height == 1234


@pytest.mark.parametrize(
    ("encoded", "value"),
    [("00", 0), ("7f", 127), ("8000", 128), ("a334", 0x1234), ("82fe7f", 0xFFFF),
     ("c7e756", 0x123456), ("86ffc7e756", 0x80123456), ("8efefefe7f", 0xFFFFFFFF),
     ("fefefefefefefefe7f", 2**63 - 1)],
)
def test_varint(encoded: str, value: int) -> None:
    """Bit patterns from Bitcoin Core's serialize_tests (varint_bitpatterns)."""
    assert read_varint(ByteReader(bytes.fromhex(encoded)), "x") == value
    assert varint(value).hex() == encoded


@pytest.mark.parametrize("encoded", ["80fefefefefefefefe7f", "ffffffffffffffffffff7f"])
def test_varint_overflow(encoded: str) -> None:
    with pytest.raises(DecodeError, match="too large"):
        read_varint(ByteReader(bytes.fromhex(encoded)), "x")


def test_lock_height_is_an_int32() -> None:
    kernel = _kernel(0x08, varint(2**31))
    with pytest.raises(DecodeError, match="lock height VarInt is too large"):
        decode_mweb_tx(bytes(64) + b"\x00\x00\x01" + kernel)


@pytest.mark.parametrize("node", CAPTURED, ids=IDS)
def test_decode_tx_gives_the_node_ids_and_weight(node: NodeView) -> None:
    """decode_tx on the whole transaction agrees with the node (needs tx.py to use mweb.py)."""
    tx = decode_tx(node.hex, "litecoin", "regtest")
    assert (str(tx.txid), str(tx.wtxid)) == (node.txid, node.wtxid)
    assert (tx.size, tx.weight, tx.vsize) == (node.size, node.weight, node.vsize)
